"""Structured JSON log lines with run id, job and ingest id; account numbers masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "sluiceway"
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


def configure_logging(job: str, level: str = "INFO", run_id: str | None = None) -> str:
    """Send sluiceway's logs as JSON lines to stderr; returns the run id used."""
    run_id = run_id or uuid.uuid4().hex[:12]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter({"run_id": run_id, "job": job}))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return run_id


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
