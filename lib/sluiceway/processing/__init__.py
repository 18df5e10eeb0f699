"""Per-record processing of accepted transactions: engine, handlers, reference data."""

from sluiceway.processing.handler_specs import resolve_handler
from sluiceway.processing.handlers import ArrowHandler, BatchHandler, Handler
from sluiceway.processing.run import (
    ProcessOptions,
    ProcessResult,
    RecordsLeftPending,
    process_records,
)

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
