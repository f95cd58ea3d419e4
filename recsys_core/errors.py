"""Named errors a user can cause: each says what was wrong and where."""

# the exit code of a step that failed on bad input or config: retrying cannot help, so the DAG fails fast
EXIT_USER_ERROR = 3
# the exit code of a step that hit a fault a retry can fix (sysexits' EX_TEMPFAIL): the task retries
EXIT_TRANSIENT = 75


class RecsysError(Exception):
    """Base class of every error the pipeline raises on purpose."""


# the exit code of a step stopped by SIGTERM (Airflow cancelling its task): 128 + 15, as a shell reports it
EXIT_CANCELLED = 143


class Cancelled(BaseException):
    """The step was asked to stop (SIGTERM, e.g. a task cancelled from the UI). A BaseException, like
    KeyboardInterrupt, so no `except Exception` swallows it: it unwinds the step, and every `finally`
    and cleanup on the way removes what the step had half written."""


class TransientError(RecsysError):
    """A fault of the infrastructure that a later attempt can get past: a database refusing
    connections or dropping one, a lock still held, a read error, an input not arrived yet. The job
    exits EXIT_TRANSIENT and the task is retried with backoff; bad data and bad config never are."""


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
