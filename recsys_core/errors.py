"""Named errors a user can cause: each says what was wrong and where."""

# the exit code of a step that failed on bad input or config: retrying cannot help, so the DAG fails fast
EXIT_USER_ERROR = 3


class RecsysError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(RecsysError):
    """The configuration file or an override is invalid."""


class MissingInputError(RecsysError):
    """An input table or an upstream partition does not exist."""


class CorruptInputError(RecsysError):
    """An input file exists but cannot be read (truncated or not Parquet)."""


class DataValidationError(RecsysError):
    """A Great Expectations suite failed on a table."""

    def __init__(self, table: str, failures: list[str], report_path: str | None = None):
        self.table = table
        self.failures = failures
        self.report_path = report_path
        lines = [f"validation of table '{table}' failed ({len(failures)} expectation(s)):"]
        lines += [f"  - {f}" for f in failures]
        if report_path:
            lines.append(f"  validation report (Great Expectations Data Docs): {report_path}")
        super().__init__("\n".join(lines))


class AuditError(RecsysError):
    """Recommendations about to be published broke an invariant; nothing was published."""
