"""What runs inside one Spark task: batching, retries, poison-record isolation, outcome rows.

Plain Python over an iterator of Arrow record batches, so it is unit-tested with lists and no
Spark. Every input record leaves as exactly one outcome row, `processed` or `failed`; nothing
a handler raises stops the task (only `setup` failures do, and Spark retries those tasks).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.logs import mask_text
from sluiceway.processing.handlers import RESULT_SCHEMA, Handler
from sluiceway.processing.retry import HandlerContractError, RetryPolicy, is_retryable

PROCESSED = "processed"
FAILED = "failed"
MAX_ERROR_MESSAGE = 2000
EVENT_TIME = pa.timestamp("us", tz="UTC")

# The columns of the records the engine needs besides the handler's own inputs.
ENGINE_INPUT_COLUMNS = ("transaction_id", "ingest_id", "event_time")

# One row per input record; the Spark side adds the idempotency key back (it is derived, so
# it need not cross the Arrow boundary twice), writes the row to processed_transactions or
# processing_failures and computes the run's metrics from it.
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string()),
        pa.field("ingest_id", pa.string()),
        pa.field("handler", pa.string()),
        pa.field("event_time", EVENT_TIME),
        pa.field("outcome", pa.string()),
        *[RESULT_SCHEMA.field(name) for name in RESULT_SCHEMA.names[1:]],
        pa.field("attempts", pa.int32()),
        pa.field("batch_id", pa.string()),
        pa.field("batch_latency_ms", pa.float64()),
    ]
)
OUTCOME_DDL = (
    "transaction_id string, ingest_id string, handler string, "
    "event_time timestamp, outcome string, result string, base_currency string, "
    "amount_base decimal(18,2), fee_base decimal(18,2), risk_flags array<string>, "
    "error_class string, error_message string, attempts int, batch_id string, "
    "batch_latency_ms double"
)


def idempotency_key(ingest_id: str, transaction_id: str, step: str) -> str:
    """sha256 of file identity, transaction id and processing step: stable across every retry.

    The ingest id is itself derived from the file's sha256, so the same record of the same
    file always gets the same key, and a different step (handler) gets a different one.
    The Spark expression in engine.idempotency_key_column computes the same value.
    """
    return hashlib.sha256(f"{ingest_id}/{transaction_id}/{step}".encode()).hexdigest()


@dataclass(frozen=True)
class PartitionPlan:
    """Everything a task needs besides its records; pickled once per task."""

    handler: Handler
    batch_size: int = 500
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    wave: int = 0


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Cut Spark's Arrow batches (10,000 rows by default) into handler batches of `size` rows."""
    carry: list[pa.RecordBatch] = []
    carried = 0
    for incoming in batches:
        offset = 0
        while offset < incoming.num_rows:
            take = min(size - carried, incoming.num_rows - offset)
            carry.append(incoming.slice(offset, take))
            carried += take
            offset += take
            if carried == size:
                yield _concat(carry)
                carry, carried = [], 0
    if carried:
        yield _concat(carry)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


def process_partition(
    batches: Iterable[pa.RecordBatch],
    plan: PartitionPlan,
    partition_id: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[pa.RecordBatch]:
    """Run the plan's handler over one partition, yielding one outcome batch per handler batch."""
    runner = _BatchRunner(plan, sleep, random.Random(f"{plan.wave}/{partition_id}"))
    handler = plan.handler
    handler.setup()
    try:
        numbered = enumerate(rebatch(batches, plan.batch_size))
        prefix = f"{handler.name}-w{plan.wave:03d}-p{partition_id:05d}"
        if handler.concurrency <= 1:
            for sequence, batch in numbered:
                yield runner.run(batch, f"{prefix}-b{sequence:05d}")
            return
        # Bounded concurrency for I/O-bound handlers: at most `concurrency` batches in flight.
        with ThreadPoolExecutor(max_workers=handler.concurrency) as pool:
            in_flight = deque()
            for sequence, batch in numbered:
                in_flight.append(pool.submit(runner.run, batch, f"{prefix}-b{sequence:05d}"))
                if len(in_flight) >= handler.concurrency:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
    finally:
        handler.teardown()


class _BatchRunner:
    """Retries a batch, splits it when it keeps failing, and builds its outcome rows."""

    def __init__(
        self, plan: PartitionPlan, sleep: Callable[[float], None], rng: random.Random
    ) -> None:
        self.plan = plan
        self.sleep = sleep
        self.rng = rng

    def run(self, batch: pa.RecordBatch, batch_id: str) -> pa.RecordBatch:
        started = time.perf_counter()
        pieces = list(self._isolate(batch, batch_id, prior_attempts=0))
        # The common case is one piece (the batch succeeded whole): no table, no copy.
        outcome = pieces[0] if len(pieces) == 1 else pa.concat_batches(pieces)
        latency = (time.perf_counter() - started) * 1000.0
        return outcome.append_column(
            OUTCOME_SCHEMA.field("batch_latency_ms"),
            pa.repeat(pa.scalar(latency, pa.float64()), outcome.num_rows),
        )

    def _isolate(
        self, rows: pa.RecordBatch, batch_id: str, prior_attempts: int
    ) -> Iterator[pa.RecordBatch]:
        """Bisect a failing batch until the failing records stand alone; the rest succeed."""
        results, attempts, error = self._attempt(rows)
        attempts += prior_attempts
        if error is None:
            yield self._outcome(rows, results, attempts, batch_id)
        elif rows.num_rows == 1:
            yield self._failure(rows, error, attempts, batch_id)
        else:
            half = rows.num_rows // 2
            yield from self._isolate(rows.slice(0, half), batch_id, attempts)
            yield from self._isolate(rows.slice(half), batch_id, attempts)

    def _attempt(
        self, rows: pa.RecordBatch
    ) -> tuple[pa.RecordBatch | None, int, BaseException | None]:
        policy = self.plan.policy
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return _conform(rows, self.plan.handler.handle_arrow(rows)), attempt, None
            except Exception as error:
                if attempt == policy.max_attempts or not is_retryable(error):
                    return None, attempt, error
                self.sleep(policy.delay(attempt, error, self.rng))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _columns(self, rows: pa.RecordBatch, attempts: int, batch_id: str) -> dict[str, pa.Array]:
        count = rows.num_rows
        return {
            "transaction_id": rows.column("transaction_id"),
            "ingest_id": rows.column("ingest_id"),
            "handler": pa.repeat(pa.scalar(self.plan.handler.name, pa.string()), count),
            "event_time": _as_type(rows.column("event_time"), EVENT_TIME),
            "attempts": pa.repeat(pa.scalar(attempts, pa.int32()), count),
            "batch_id": pa.repeat(pa.scalar(batch_id, pa.string()), count),
        }

    def _outcome(
        self, rows: pa.RecordBatch, results: pa.RecordBatch, attempts: int, batch_id: str
    ) -> pa.RecordBatch:
        columns = self._columns(rows, attempts, batch_id)
        columns["outcome"] = pc.if_else(
            pc.is_null(results.column("error_class")), PROCESSED, FAILED
        )
        for name in RESULT_SCHEMA.names[1:]:
            columns[name] = results.column(name)
        return _to_outcome(columns)

    def _failure(
        self, rows: pa.RecordBatch, error: BaseException, attempts: int, batch_id: str
    ) -> pa.RecordBatch:
        count = rows.num_rows
        columns = self._columns(rows, attempts, batch_id)
        columns["outcome"] = pa.repeat(pa.scalar(FAILED, pa.string()), count)
        for name in RESULT_SCHEMA.names[1:]:
            columns[name] = pa.nulls(count, RESULT_SCHEMA.field(name).type)
        message = mask_text(str(error) or repr(error))[:MAX_ERROR_MESSAGE]
        columns["error_class"] = pa.array([type(error).__name__] * count, pa.string())
        columns["error_message"] = pa.array([message] * count, pa.string())
        return _to_outcome(columns)


def _to_outcome(columns: dict[str, pa.Array]) -> pa.RecordBatch:
    schema = OUTCOME_SCHEMA.remove(len(OUTCOME_SCHEMA) - 1)
    return pa.RecordBatch.from_arrays([columns[name] for name in schema.names], schema=schema)


def _as_type(array: pa.Array, kind: pa.DataType) -> pa.Array:
    return array if array.type == kind else array.cast(kind)


def _same_ids(returned: pa.Array, given: pa.Array) -> bool:
    # Handlers usually pass the input column through: the cheap identity check comes first.
    return returned.equals(given) or bool(pc.all(pc.equal(returned, given)).as_py())


def _conform(rows: pa.RecordBatch, results: pa.RecordBatch) -> pa.RecordBatch:
    """Check the handler answered every record in order; fill the result columns it left out."""
    if not isinstance(results, pa.RecordBatch | pa.Table):
        raise HandlerContractError(
            f"handler returned {type(results).__name__}; handle_arrow must return a RecordBatch"
        )
    if isinstance(results, pa.Table):
        results = results.combine_chunks().to_batches()[0] if results.num_rows else None
    if results is None or results.num_rows != rows.num_rows:
        raise HandlerContractError(
            f"handler returned {0 if results is None else results.num_rows} result rows for "
            f"{rows.num_rows} records; return exactly one row per record, in input order"
        )
    if "transaction_id" not in results.schema.names or not _same_ids(
        results.column("transaction_id"), rows.column("transaction_id")
    ):
        raise HandlerContractError(
            "handler results are not in input order (transaction_id differs); keep the order"
        )
    arrays = []
    for result_field in RESULT_SCHEMA:
        if result_field.name in results.schema.names:
            arrays.append(_as_type(results.column(result_field.name), result_field.type))
        else:
            arrays.append(pa.nulls(rows.num_rows, result_field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=RESULT_SCHEMA)
