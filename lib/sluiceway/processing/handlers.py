"""The handler interface: what a piece of per-record business logic looks like to the engine.

Three shapes, one contract (`handle_arrow`: an Arrow batch of records in, one result row per
record out, in the same order):

- `ArrowHandler`: vectorized, for speed; write `handle_arrow` with pyarrow compute.
- `BatchHandler`: a list of record dicts in, a list of result dicts out; the simple shape.
- `LambdaHandler` (lambda_handler.py): runs an existing AWS Lambda `handler(event, context)`
  unchanged on the event the Step Functions Map state used to send it — the migration path
  from the old design.

Handlers are chosen by name (`financial`, `http`, `noop`) or by `module:attribute`
(handler_specs.py).
See docs/processing.md for a worked example.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sluiceway.errors import ConfigurationError
from sluiceway.processing.retry import HandlerContractError, PermanentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from sluiceway.settings import Settings

# What a handler may return per record; any column it leaves out is null in the result.
RESULT_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string()),
        pa.field("result", pa.string()),
        pa.field("base_currency", pa.string()),
        pa.field("amount_base", pa.decimal128(18, 2)),
        pa.field("fee_base", pa.decimal128(18, 2)),
        pa.field("risk_flags", pa.list_(pa.string())),
        # A non-null error_class marks that one record as failed without failing its batch.
        pa.field("error_class", pa.string()),
        pa.field("error_message", pa.string()),
    ]
)
RESULT_FIELDS = tuple(field.name for field in RESULT_SCHEMA)


class Handler:
    """Base of every handler; the engine calls, per Spark partition: setup, handle*, teardown.

    Subclasses set `concurrency` above 1 when they wait on I/O, so one partition keeps
    several batches in flight (bounded; CPU-bound handlers gain nothing from it).
    """

    name: str = "handler"
    concurrency: int = 1
    # True: `handle_arrow` may get several batches at once (a slice of ~10,000 rows), because
    # its cost is per call, not per record; retries and isolation still work per batch.
    # Leave False for handlers whose batches are requests to someone else (their size matters).
    vectorized: bool = False
    # The record columns the handler reads; empty means all of them. Fewer columns means
    # less Arrow traffic between the JVM and Python, which is most of the engine's cost.
    columns: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Handler:
        """Build the handler from `--handler-option key=value` pairs."""
        try:
            return cls(**options)
        except TypeError as error:
            raise ConfigurationError(
                f"handler {cls.__name__} does not accept options {dict(options)}: {error}"
            ) from error

    def bind(self, records: DataFrame, settings: Settings) -> DataFrame:
        """Driver side, before any partition runs: load reference data, add Spark-side columns.

        Cross-record facts (counts per account, joins) belong here, in Spark, because a
        partition only sees its own slice of the records.
        """
        return records

    def bind_laid_out(
        self, records: DataFrame, settings: Settings, partitions: int, whole_ingests: bool = False
    ) -> DataFrame | None:
        """Optional: `bind` and the layout the tasks read, in one shuffle.

        `whole_ingests` says the records are every accepted record of their ingests (an
        ingest's first run), so they need not be told apart from the rest of the table.

        For a handler whose cross-record work already groups the records (counts per account
        need every transaction of an account in one partition): return the bound records,
        only the columns the engine and the handler read, hash-partitioned into exactly
        `partitions` partitions and sorted within them by keys that make the order total,
        so that a retried task rebuilds the same batches. None (the default): the engine calls
        `bind`, then spreads the records by transaction id itself, a second shuffle.
        """
        return None

    def setup(self) -> None:
        """Once per partition: open clients and sessions that every batch reuses."""

    def teardown(self) -> None:
        """Once per partition, also after a failure: close what `setup` opened."""

    def handle_arrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One result row per input record, same order, columns from RESULT_SCHEMA."""
        raise NotImplementedError


class ArrowHandler(Handler):
    """A vectorized handler: subclasses implement `handle_arrow` with pyarrow compute."""

    vectorized = True


class BatchHandler(Handler):
    """A handler over plain dicts; subclasses implement `handle`."""

    def handle(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One result dict per record, each with the record's `transaction_id`."""
        raise NotImplementedError

    def handle_arrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return results_to_arrow(batch, self.handle(batch.to_pylist()))


def results_to_arrow(batch: pa.RecordBatch, results: list[dict[str, Any]]) -> pa.RecordBatch:
    """Match result dicts to the batch's records by transaction id, in the batch's order."""
    by_id: dict[str, dict[str, Any]] = {}
    for result in results:
        if not isinstance(result, Mapping) or "transaction_id" not in result:
            raise HandlerContractError(
                f"handler returned {str(result)[:120]!r}; every result must be a dict with "
                "the record's transaction_id"
            )
        by_id[str(result["transaction_id"])] = dict(result)
    ids = batch.column("transaction_id").to_pylist()
    missing = [transaction_id for transaction_id in ids if transaction_id not in by_id]
    if missing:
        raise HandlerContractError(
            f"handler returned no result for {len(missing)} of {len(ids)} records "
            f"(first: {missing[:3]}); return one result per record or raise for the batch"
        )
    columns = {
        name: [_result_value(by_id[i].get(name), name) for i in ids] for name in RESULT_FIELDS
    }
    columns["transaction_id"] = ids
    return pa.RecordBatch.from_pydict(columns, schema=RESULT_SCHEMA)


def _result_value(value: Any, name: str) -> Any:
    if value is None:
        return None
    if name == "result" and not isinstance(value, str):
        return json.dumps(value, default=str, sort_keys=True)
    if name in ("amount_base", "fee_base"):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    return value


class FunctionHandler(BatchHandler):
    """A plain function `records -> results` used as a batch handler."""

    def __init__(self, function: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        self.function = function

    def handle(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.function(records)


class NoopHandler(ArrowHandler):
    """Does nothing per record: measures what the engine itself costs."""

    name = "noop"
    columns = ("transaction_id",)

    def handle_arrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = batch.column("transaction_id")
        return pa.RecordBatch.from_arrays(
            [ids, pa.array(["ok"] * batch.num_rows, pa.string())],
            names=["transaction_id", "result"],
        )


__all__ = [
    "RESULT_SCHEMA",
    "ArrowHandler",
    "BatchHandler",
    "FunctionHandler",
    "Handler",
    "NoopHandler",
    "PermanentError",
]
