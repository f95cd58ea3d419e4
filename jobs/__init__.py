"""One runnable entry point per pipeline step: `python -m jobs.<step> --ds YYYY-MM-DD ...`."""
