"""`recsys bench`: benchmarks that print figures, each against a reference measured in the same run."""
