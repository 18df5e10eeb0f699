"""What runs inside one Spark task: batching, retries, poison-record isolation, outcome rows.

Plain Python over an iterator of Arrow record batches, so it is unit-tested with lists and no
Spark. Every input record leaves as exactly one outcome row: `processed`, `failed` (a dead
letter: a permanent, record-specific error) or `pending` (a retryable error outlasted its
retries, or the endpoint refuses every request: the endpoint is down, not the record bad).
Nothing a handler raises stops the task (only `setup` failures do, and Spark retries those
tasks).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.logs import mask_text
from sluiceway.processing.handlers import RESULT_SCHEMA, Handler
from sluiceway.processing.retry import (
    EndpointRefused,
    HandlerContractError,
    RetryableError,
    RetryPolicy,
    is_retryable,
)

PROCESSED = "processed"
FAILED = "failed"
PENDING = "pending"
MAX_ERROR_MESSAGE = 2000
EVENT_TIME = pa.timestamp("us", tz="UTC")

# The columns of the records the engine needs besides the handler's own inputs.
ENGINE_INPUT_COLUMNS = ("transaction_id", "ingest_id", "idempotency_key", "event_time")

# Rows per call of a vectorized handler: Spark's own Arrow batch size
# (spark.sql.execution.arrow.maxRecordsPerBatch), rounded down to whole handler batches.
SLICE_ROWS = 10_000

# One row per input record. `processing/outcomes.py` writes the `processed` rows to
# processed_transactions and the `failed` ones to processing_failures (pending rows go
# nowhere), and sums every row into the run's metrics.
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string()),
        pa.field("ingest_id", pa.string()),
        pa.field("idempotency_key", pa.string()),
        pa.field("handler", pa.string()),
        pa.field("event_time", EVENT_TIME),
        pa.field("outcome", pa.string()),
        *[RESULT_SCHEMA.field(name) for name in RESULT_SCHEMA.names[1:]],
        pa.field("attempts", pa.int32()),
        pa.field("batch_id", pa.string()),
        pa.field("batch_latency_ms", pa.float64()),
    ]
)


def idempotency_key(ingest_id: str, transaction_id: str, step: str) -> str:
    """sha256 of file identity, transaction id and processing step: stable across every retry.

    The ingest id is itself derived from the file's sha256, so the same record of the same
    file always gets the same key, and a different step (handler) gets a different one.
    The Spark expression in processing.run.idempotency_key_column computes the same value.
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


def slices(
    batches: Iterable[pa.RecordBatch], batch_size: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Whole handler batches joined into slices of about SLICE_ROWS rows, with the sequence
    number of each slice's first batch: the batch boundaries are those of `rebatch`."""
    per_slice = max(1, SLICE_ROWS // batch_size)
    sequence = 0
    for piece in rebatch(batches, per_slice * batch_size):
        yield sequence, piece
        sequence += math.ceil(piece.num_rows / batch_size)


def process_partition(
    batches: Iterable[pa.RecordBatch],
    plan: PartitionPlan,
    partition_id: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[pa.RecordBatch]:
    """Run the plan's handler over one partition, yielding the outcome rows of every record."""
    runner = _BatchRunner(plan, sleep, random.Random(f"{plan.wave}/{partition_id}"))
    handler = plan.handler
    handler.setup()
    try:
        prefix = f"{handler.name}-w{plan.wave:03d}-p{partition_id:05d}"
        if handler.vectorized and handler.concurrency <= 1:
            for sequence, piece in slices(batches, plan.batch_size):
                yield runner.run_slice(piece, prefix, sequence)
            return
        numbered = enumerate(rebatch(batches, plan.batch_size))
        if handler.concurrency <= 1:
            for sequence, batch in numbered:
                yield runner.run(batch, _batch_id(prefix, sequence))
            return
        # Bounded concurrency for I/O-bound handlers: at most `concurrency` batches in flight.
        with ThreadPoolExecutor(max_workers=handler.concurrency) as pool:
            in_flight: deque[Future[pa.RecordBatch]] = deque()
            for sequence, batch in numbered:
                in_flight.append(pool.submit(runner.run, batch, _batch_id(prefix, sequence)))
                if len(in_flight) >= handler.concurrency:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
    finally:
        handler.teardown()


def _batch_id(prefix: str, sequence: int) -> str:
    return f"{prefix}-b{sequence:05d}"


class CircuitOpen(RetryableError):
    """A batch not sent because an earlier batch of the task left its records pending."""


class CircuitBreaker:
    """Opens for the rest of a task once a batch's retries of a retryable error run out, or
    the endpoint refuses (`EndpointRefused`, or every record of a batch refused alone).

    An outage then costs each task one batch's retries instead of every batch's: the task's
    remaining batches leave as `pending` without another call to the endpoint.
    """

    def __init__(self) -> None:
        self._tripped = threading.Event()
        self.cause = ""

    @property
    def is_open(self) -> bool:
        return self._tripped.is_set()

    def trip(self, error: BaseException) -> None:
        if not self.is_open:
            self.cause = f"{type(error).__name__}: {error}"
            self._tripped.set()

    def refusal(self) -> CircuitOpen:
        return CircuitOpen(
            f"not sent: an earlier batch of this task left its records pending ({self.cause})"
        )


class _BatchRunner:
    """Retries a batch, splits it on permanent errors, and builds its outcome rows."""

    def __init__(
        self, plan: PartitionPlan, sleep: Callable[[float], None], rng: random.Random
    ) -> None:
        self.plan = plan
        self.sleep = sleep
        self.rng = rng
        self.breaker = CircuitBreaker()

    def run_slice(self, piece: pa.RecordBatch, prefix: str, first: int) -> pa.RecordBatch:
        """A vectorized handler's call over several batches at once.

        One call per slice pays pyarrow's per-call cost once per ~10,000 rows instead of once
        per batch. Only when the call raises does the slice fall back to its batches, each
        retried and isolated on its own, so batch ids and dead letters are as without slices.
        """
        started = time.perf_counter()
        size = self.plan.batch_size
        prior = 0
        if not self.breaker.is_open:
            prior = 1
            try:
                results = _conform(piece, self.plan.handler.handle_arrow(piece))
            except Exception:
                results = None
            if results is not None:
                ids = pa.array(
                    [_batch_id(prefix, first + i) for i in range(-(-piece.num_rows // size))]
                )
                batch_ids = ids.take(pa.array(np.arange(piece.num_rows) // size))
                return _with_latency(self._outcome(piece, results, 1, batch_ids), started)
        outcomes = [
            self.run(piece.slice(offset, size), _batch_id(prefix, first + index), prior)
            for index, offset in enumerate(range(0, piece.num_rows, size))
        ]
        return outcomes[0] if len(outcomes) == 1 else pa.concat_batches(outcomes)

    def run(self, batch: pa.RecordBatch, batch_id: str, prior_attempts: int = 0) -> pa.RecordBatch:
        started = time.perf_counter()
        pieces = list(self._isolate(batch, batch_id, prior_attempts))
        outcomes = [outcome for outcome, _ in pieces]
        # The common case is one piece (the batch succeeded whole): no table, no copy.
        outcome = outcomes[0] if len(outcomes) == 1 else pa.concat_batches(outcomes)
        refusal = endpoint_refusal(batch.num_rows, [error for _, error in pieces], batch_id)
        if refusal is not None:
            self.breaker.trip(refusal)
            outcome = _left_pending(outcome, refusal)
        return _with_latency(outcome, started)

    def _isolate(
        self, rows: pa.RecordBatch, batch_id: str, prior_attempts: int
    ) -> Iterator[tuple[pa.RecordBatch, BaseException | None]]:
        """Bisect a batch with a permanent error until the failing records stand alone.

        Yields each piece's outcome rows with the error that decided them (None: answered).
        A retryable error that outlasted its retries is the endpoint's trouble, not the
        records': bisecting would only multiply the calls, so the batch stays pending.
        """
        results, attempts, error = self._attempt(rows)
        attempts += prior_attempts
        if error is None:
            yield self._outcome(rows, results, attempts, batch_id), None
        elif is_retryable(error):
            yield self._unfinished(rows, error, attempts, batch_id, PENDING), error
        elif rows.num_rows == 1:
            yield self._unfinished(rows, error, attempts, batch_id, FAILED), error
        else:
            half = rows.num_rows // 2
            yield from self._isolate(rows.slice(0, half), batch_id, attempts)
            yield from self._isolate(rows.slice(half), batch_id, attempts)

    def _attempt(
        self, rows: pa.RecordBatch
    ) -> tuple[pa.RecordBatch | None, int, BaseException | None]:
        policy = self.plan.policy
        for attempt in range(1, policy.max_attempts + 1):
            if self.breaker.is_open:
                return None, attempt - 1, self.breaker.refusal()
            try:
                return _conform(rows, self.plan.handler.handle_arrow(rows)), attempt, None
            except Exception as error:
                if not is_retryable(error):
                    return None, attempt, error
                # A refusal is not retried: it does not go away in seconds.
                if attempt == policy.max_attempts or isinstance(error, EndpointRefused):
                    self.breaker.trip(error)
                    return None, attempt, error
                self.sleep(policy.delay(attempt, error, self.rng))
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _columns(
        self, rows: pa.RecordBatch, attempts: int, batch_id: str | pa.Array
    ) -> dict[str, pa.Array]:
        count = rows.num_rows
        if isinstance(batch_id, str):
            batch_id = pa.repeat(pa.scalar(batch_id, pa.string()), count)
        return {
            "transaction_id": rows.column("transaction_id"),
            "ingest_id": rows.column("ingest_id"),
            "idempotency_key": rows.column("idempotency_key"),
            "handler": pa.repeat(pa.scalar(self.plan.handler.name, pa.string()), count),
            "event_time": _as_type(rows.column("event_time"), EVENT_TIME),
            "attempts": pa.repeat(pa.scalar(attempts, pa.int32()), count),
            "batch_id": batch_id,
        }

    def _outcome(
        self,
        rows: pa.RecordBatch,
        results: pa.RecordBatch,
        attempts: int,
        batch_id: str | pa.Array,
    ) -> pa.RecordBatch:
        columns = self._columns(rows, attempts, batch_id)
        columns["outcome"] = pc.if_else(
            pc.is_null(results.column("error_class")), PROCESSED, FAILED
        )
        for name in RESULT_SCHEMA.names[1:]:
            columns[name] = results.column(name)
        return _to_outcome(columns)

    def _unfinished(
        self, rows: pa.RecordBatch, error: BaseException, attempts: int, batch_id: str, outcome: str
    ) -> pa.RecordBatch:
        """The rows of a batch whose call raised: dead letters (`failed`) or `pending`."""
        count = rows.num_rows
        columns = self._columns(rows, attempts, batch_id)
        columns["outcome"] = pa.repeat(pa.scalar(outcome, pa.string()), count)
        for name in RESULT_SCHEMA.names[1:]:
            columns[name] = pa.nulls(count, RESULT_SCHEMA.field(name).type)
        message = mask_text(str(error) or repr(error))[:MAX_ERROR_MESSAGE]
        columns["error_class"] = pa.repeat(pa.scalar(type(error).__name__, pa.string()), count)
        columns["error_message"] = pa.repeat(pa.scalar(message, pa.string()), count)
        return _to_outcome(columns)


def endpoint_refusal(
    records: int, errors: list[BaseException | None], batch_id: str
) -> EndpointRefused | None:
    """Whether a bisected batch was refused by the endpoint rather than by its records.

    The rule: a batch of at least 2 records, none of them answered, whose records sent alone
    were all refused with the same status (`PermanentError.status`; records left pending or
    not sent because the breaker opened count for neither side). An endpoint that refuses
    every record (a changed API version or contract) is an outage: the records stay pending
    and the run exits 5 instead of dead-lettering them all. A batch of one record never
    qualifies, so `--batch-size 1` dead-letters records that really are all bad.
    """
    if records < 2 or any(error is None for error in errors):
        return None
    refused = [error for error in errors if error is not None and not is_retryable(error)]
    statuses = {getattr(error, "status", None) for error in refused}
    if not refused or len(statuses) != 1 or None in statuses:
        return None
    return EndpointRefused(
        f"every record of batch {batch_id} sent alone was refused with status "
        f"{statuses.pop()}: the endpoint refuses all records (a changed API version or "
        "contract?), not these ones; check the endpoint, or re-run with --batch-size 1 to "
        f"dead-letter them one by one. First refusal: {refused[0]}"
    )


def _left_pending(outcome: pa.RecordBatch, refusal: EndpointRefused) -> pa.RecordBatch:
    """The batch's outcome rows turned `pending`, with the refusal as their error."""
    count = outcome.num_rows
    message = mask_text(str(refusal))[:MAX_ERROR_MESSAGE]
    replaced = {
        "outcome": pa.repeat(pa.scalar(PENDING, pa.string()), count),
        "error_class": pa.repeat(pa.scalar(type(refusal).__name__, pa.string()), count),
        "error_message": pa.repeat(pa.scalar(message, pa.string()), count),
    }
    return pa.RecordBatch.from_arrays(
        [replaced.get(name, outcome.column(name)) for name in outcome.schema.names],
        schema=outcome.schema,
    )


def _with_latency(outcome: pa.RecordBatch, started: float) -> pa.RecordBatch:
    latency = (time.perf_counter() - started) * 1000.0
    return outcome.append_column(
        OUTCOME_SCHEMA.field("batch_latency_ms"),
        pa.repeat(pa.scalar(latency, pa.float64()), outcome.num_rows),
    )


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
