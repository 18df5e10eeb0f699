"""Per-record processing of accepted transactions: engine, handlers, reference data."""

from sluiceway.processing.engine import (
    ProcessOptions,
    ProcessResult,
    RecordsLeftPending,
    process_records,
)
from sluiceway.processing.handlers import ArrowHandler, BatchHandler, Handler, resolve_handler

__all__ = [
    "ArrowHandler",
    "BatchHandler",
    "Handler",
    "ProcessOptions",
    "ProcessResult",
    "RecordsLeftPending",
    "process_records",
    "resolve_handler",
]
