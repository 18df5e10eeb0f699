"""Log lines with run id, job and ingest id, account numbers masked: JSON for machines, text
for a person.

Where they go: every line at the level to stderr, in the chosen format; with a log file, every
line goes to the file as JSON and stderr keeps only warnings and errors (every line again at
DEBUG), because on a terminal the progress line and the summary already tell the story.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluiceway.errors import ConfigurationError

LOGGER_NAME = "sluiceway"
LOG_FORMATS = ("text", "json")
# Erases a terminal's progress line (sluiceway.terminal) so a log line is printed in its place.
CLEAR_LINE = "\r\x1b[K"
_ACCOUNT_LIKE = re.compile(r"\b([A-Z]{2}[0-9]{2}[A-Z0-9]{6,}|[0-9]{8,})\b")


# The masking rule, shared by the logs and the rejected records: the last four characters are
# kept (all of them masked when there are no more than four), every other one becomes MASK.
MASK = "*"
KEPT_CHARACTERS = 4


def mask_account(value: str) -> str:
    """Keep the last four characters of an account number: enough to talk about it, no more."""
    if len(value) <= KEPT_CHARACTERS:
        return MASK * len(value)
    return MASK * (len(value) - KEPT_CHARACTERS) + value[-KEPT_CHARACTERS:]


def mask_text(text: str) -> str:
    """Mask everything in free text that looks like an account number (IBAN or long digits)."""
    return _ACCOUNT_LIKE.sub(lambda match: mask_account(match.group(1)), text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={"fields": {...}}` adds keys."""

    def __init__(self, context: dict[str, Any]) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            **self.context,
            "msg": mask_text(record.getMessage()),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL message` for a person; the trace only where no log file keeps it.

    On a terminal the line first erases the progress line, which is drawn again below it.
    """

    def __init__(self, *, terminal: bool, with_trace: bool) -> None:
        super().__init__()
        self.prefix = CLEAR_LINE if terminal else ""
        self.with_trace = with_trace

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{self.prefix}{time} {record.levelname:<7} {mask_text(record.getMessage())}"
        if record.exc_info and self.with_trace:
            line += "\n" + mask_text(self.formatException(record.exc_info))
        return line


def configure_logging(
    job: str,
    level: str = "INFO",
    run_id: str | None = None,
    *,
    log_format: str = "json",
    log_file: str = "",
) -> str:
    """Send sluiceway's logs to stderr (and a log file, if given); returns the run id used."""
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(
            f"unknown log format {log_format!r}; choose one of {', '.join(LOG_FORMATS)}"
        )
    threshold = logging.getLevelNamesMapping().get(level.upper())
    if threshold is None:
        raise ConfigurationError(f"unknown log level {level!r}; choose DEBUG, INFO or WARNING")
    run_id = run_id or uuid.uuid4().hex[:12]
    json_lines = JsonFormatter({"run_id": run_id, "job": job})
    console = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        console.setFormatter(json_lines)
    else:
        terminal = sys.stderr.isatty()
        console.setFormatter(TextFormatter(terminal=terminal, with_trace=not log_file))
    handlers: list[logging.Handler] = [console]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(log_file, encoding="utf-8", delay=True)
        file.setFormatter(json_lines)
        handlers.append(file)
        debug = threshold <= logging.DEBUG
        if not debug:
            console.setLevel(max(logging.WARNING, threshold))
        _warnings_to(None if debug else file, handlers)
    logger = logging.getLogger(LOGGER_NAME)
    for replaced in logger.handlers:
        replaced.close()  # a log file of an earlier configuration; stderr stays open
    logger.handlers[:] = handlers
    logger.setLevel(threshold)
    logger.propagate = False
    return run_id


def _warnings_to(file: logging.Handler | None, handlers: list[logging.Handler]) -> None:
    """Python warnings (pyspark's, for one) as log lines: in the log file only, or everywhere
    at DEBUG, never on a person's terminal otherwise."""
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [file] if file else handlers
    warnings_logger.propagate = False


def default_log_file(command: str, started: datetime, pid: int) -> str:
    """The log file of a `sluiceway` run on a terminal: one per run, in the temp folder, so
    it works for any warehouse (s3://, read-only) and never lands inside one."""
    stamp = started.strftime("%Y%m%d-%H%M%S")
    return str(Path(tempfile.gettempdir()) / "sluiceway-logs" / f"{command}-{stamp}-{pid}.jsonl")


def spark_log_file(log_file: str) -> str:
    """Where Spark's own log goes when sluiceway's goes to `log_file`: beside it."""
    path = Path(log_file)
    return str(path.with_name(f"{path.stem}.spark.log"))


def get_logger(module: str) -> logging.Logger:
    """The logger of a module, called as `LOGGER = get_logger(__name__)` everywhere.

    Every module of the package is a child of the sluiceway logger, so one configuration
    covers the library; a job script (`__main__`) is placed under it by its file name.
    """
    if module == LOGGER_NAME or module.startswith(f"{LOGGER_NAME}."):
        return logging.getLogger(module)
    return logging.getLogger(f"{LOGGER_NAME}.{module.rpartition('.')[2]}")


def log_event(logger: logging.Logger, message: str, **fields: Any) -> None:
    """Log an info line with structured fields (for example ingest_id, counts)."""
    logger.info(message, extra={"fields": fields})
