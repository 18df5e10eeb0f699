"""The error hierarchy: every message names the file, line or record, the rule, and what to do."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every sluiceway command and job, named once (README and --help list them)."""

    OK = 0
    UNEXPECTED = 1  # a bug: the trace is in the JSON log
    BAD_INPUT = 2  # a whole-file problem or a wrong argument/setting: fix it, then re-run
    RECONCILIATION_FAILED = 3  # counts or totals do not add up: nothing was published
    BUSY = 4  # another writer holds the namespace's lease (or maintenance skipped): retry later
    ENDPOINT_UNAVAILABLE = 5  # retryable outage: records left pending, retry later
    LEASE_LOST = 6  # this run lost its writer lease (fenced): it stopped before its next commit
    FEED_LATE = 7  # `sluiceway status` only: a feed's file has not arrived by its due time


class SluicewayError(Exception):
    """Base of every error sluiceway raises on purpose; the CLI prints it without a traceback."""

    exit_code: int = ExitCode.BAD_INPUT


class ConfigurationError(SluicewayError):
    """A setting, argument or environment prerequisite (such as Java) is wrong or missing."""


class LandingFileError(SluicewayError):
    """The landing file as a whole cannot be ingested (wrong header, unreadable, not found)."""

    def __init__(self, source: str, rule: str, detail: str, action: str) -> None:
        self.source = source
        self.rule = rule
        super().__init__(f"{source}: {rule}: {detail}. {action}")


class EndpointUnavailableError(SluicewayError):
    """Retries of a retryable error ran out: records were left pending, none dead-lettered."""

    exit_code: int = ExitCode.ENDPOINT_UNAVAILABLE
