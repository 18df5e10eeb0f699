"""The error hierarchy: every message names the file, line or record, the rule, and what to do."""


class SluicewayError(Exception):
    """Base of every error sluiceway raises on purpose; the CLI prints it without a traceback."""

    exit_code = 2


class ConfigurationError(SluicewayError):
    """A setting, argument or environment prerequisite (such as Java) is wrong or missing."""


class LandingFileError(SluicewayError):
    """The landing file as a whole cannot be ingested (wrong header, unreadable, not found)."""

    def __init__(self, source: str, rule: str, detail: str, action: str) -> None:
        self.source = source
        self.rule = rule
        super().__init__(f"{source}: {rule}: {detail}. {action}")


class ReconciliationError(SluicewayError):
    """Counts or amount totals do not add up; the run is marked failed, nothing is hidden."""

    exit_code = 3
