"""The code that runs inside a Spark task, exercised with plain Arrow batches and no Spark."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from sluiceway.processing.handlers import BatchHandler, NoopHandler
from sluiceway.processing.partition import (
    FAILED,
    PENDING,
    PROCESSED,
    PartitionPlan,
    idempotency_key,
    process_partition,
    rebatch,
    slices,
)
from sluiceway.processing.retry import RetryableError, RetryPolicy

pytestmark = pytest.mark.unit

NO_WAIT = RetryPolicy(max_attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.05)


def records(count: int, size: int = 10_000) -> list[pa.RecordBatch]:
    """`count` records as Spark would hand them over: Arrow batches of up to `size` rows."""
    rows = [
        {
            "transaction_id": f"tx-{i:03d}",
            "ingest_id": "ing_test",
            "idempotency_key": idempotency_key("ing_test", f"tx-{i:03d}", "test"),
            "event_time": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        }
        for i in range(count)
    ]
    table = pa.Table.from_pylist(rows)
    return table.to_batches(max_chunksize=size)


def run(handler: Any, count: int, batch_size: int = 8, **plan: Any) -> list[dict[str, Any]]:
    sleeps: list[float] = []
    outcome = process_partition(
        records(count),
        PartitionPlan(handler, batch_size, plan.pop("policy", NO_WAIT)),
        partition_id=3,
        sleep=sleeps.append,
    )
    rows = pa.Table.from_batches(list(outcome)).to_pylist()
    for row in rows:
        row["sleeps"] = sleeps
    return rows


class Poison(BatchHandler):
    """Raises for the whole batch whenever one of the poisoned records is in it."""

    name = "test"

    def __init__(self, poisoned: set[str], error: type[Exception] = ValueError) -> None:
        self.poisoned = poisoned
        self.error = error
        self.calls = 0

    def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls += 1
        bad = [r["transaction_id"] for r in batch if r["transaction_id"] in self.poisoned]
        if bad:
            raise self.error(f"cannot handle {bad[0]}")
        return [{"transaction_id": r["transaction_id"], "result": "ok"} for r in batch]


def test_spark_batches_are_cut_to_the_handler_batch_size() -> None:
    sizes = [batch.num_rows for batch in rebatch(records(23, size=7), 5)]
    assert sizes == [5, 5, 5, 5, 3]


def test_poison_record_fails_alone_while_its_batch_mates_succeed() -> None:
    rows = run(Poison({"tx-013"}), 20)
    by_id = {row["transaction_id"]: row for row in rows}
    assert len(rows) == 20
    assert by_id["tx-013"]["outcome"] == FAILED
    assert by_id["tx-013"]["error_class"] == "ValueError"
    assert "tx-013" in by_id["tx-013"]["error_message"]
    assert [r for r in rows if r["outcome"] == PROCESSED and r["transaction_id"] != "tx-013"]
    assert {r["outcome"] for r in rows if r["transaction_id"] != "tx-013"} == {PROCESSED}
    # A permanent error is not retried: the batch of 8 is split, never re-sent whole.
    assert by_id["tx-013"]["attempts"] == 4  # 8 -> 4 -> 2 -> 1 records, one call each
    assert by_id["tx-013"]["batch_id"] == "test-w000-p00003-b00001"
    assert by_id["tx-000"]["attempts"] == 1


def test_retryable_error_is_retried_with_backoff_and_then_succeeds() -> None:
    class Flaky(BatchHandler):
        name = "test"
        failures = 2

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if self.failures:
                self.failures -= 1
                raise RetryableError("503 from the ledger")
            return [{"transaction_id": r["transaction_id"]} for r in batch]

    rows = run(Flaky(), 4, batch_size=4)
    assert [r["outcome"] for r in rows] == [PROCESSED] * 4
    assert {r["attempts"] for r in rows} == {3}
    sleeps = rows[0]["sleeps"]
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.01 and 0 <= sleeps[1] <= 0.02


def test_retry_after_from_the_server_replaces_the_backoff() -> None:
    class Throttled(BatchHandler):
        name = "test"
        calls = 0

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            self.calls += 1
            if self.calls == 1:
                raise RetryableError("429", retry_after=7.0)
            return [{"transaction_id": r["transaction_id"]} for r in batch]

    rows = run(Throttled(), 2)
    assert rows[0]["sleeps"] == [7.0]


def test_record_that_keeps_timing_out_stays_pending_and_is_never_bisected() -> None:
    handler = Poison({"tx-002"}, error=TimeoutError)
    rows = run(handler, 4, batch_size=4)
    assert {row["outcome"] for row in rows} == {PENDING}
    assert {row["error_class"] for row in rows} == {"TimeoutError"}
    # Retried whole, never split: a retryable error is the endpoint's, not a record's.
    assert handler.calls == 3
    assert {row["attempts"] for row in rows} == {3}


def test_an_outage_opens_the_breaker_so_later_batches_are_not_sent() -> None:
    class Down(BatchHandler):
        name = "test"
        calls = 0

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            self.calls += 1
            raise RetryableError("POST /ledger answered 503; retrying")

    handler = Down()
    rows = run(handler, 40, batch_size=8)
    assert len(rows) == 40
    assert {row["outcome"] for row in rows} == {PENDING}
    # One batch used its 3 attempts; the 4 batches after it were not sent at all.
    assert handler.calls == 3
    by_batch = {row["batch_id"]: row for row in rows}
    assert by_batch["test-w000-p00003-b00000"]["attempts"] == 3
    later = by_batch["test-w000-p00003-b00004"]
    assert (later["attempts"], later["error_class"]) == (0, "CircuitOpen")
    assert "503" in later["error_message"]


def test_the_breaker_also_stops_batches_already_in_flight() -> None:
    class Down(BatchHandler):
        name = "test"
        concurrency = 4

        def __init__(self) -> None:
            self.calls = 0
            self.lock = threading.Lock()

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            with self.lock:
                self.calls += 1
            time.sleep(0.01)
            raise RetryableError("503")

    handler = Down()
    rows = run(handler, 80, batch_size=4)
    assert {row["outcome"] for row in rows} == {PENDING}
    # At most the in-flight batches' attempts, not 20 batches x 3 attempts.
    assert handler.calls <= 4 * 3


def test_a_permanent_error_still_splits_while_a_retryable_half_stays_pending() -> None:
    class Mixed(BatchHandler):
        name = "test"

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            ids = {r["transaction_id"] for r in batch}
            if "tx-001" in ids:
                raise ValueError("account closed for tx-001")
            if "tx-006" in ids:
                raise RetryableError("503")
            return [{"transaction_id": r["transaction_id"]} for r in batch]

    rows = run(Mixed(), 8, batch_size=8)
    by_id = {row["transaction_id"]: row["outcome"] for row in rows}
    assert by_id["tx-001"] == FAILED
    assert by_id["tx-000"] == PROCESSED
    assert {by_id[t] for t in ("tx-004", "tx-005", "tx-006", "tx-007")} == {PENDING}


class Vectorized(NoopHandler):
    """A vectorized handler that counts its calls and can refuse a poisoned record."""

    name = "test"

    def __init__(self, poisoned: frozenset[str] = frozenset()) -> None:
        self.poisoned = poisoned
        self.sizes: list[int] = []

    def handle_arrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.sizes.append(batch.num_rows)
        if self.poisoned & set(batch.column("transaction_id").to_pylist()):
            raise ValueError("cannot handle a poisoned record")
        return super().handle_arrow(batch)


def test_a_vectorized_handler_gets_whole_slices_and_batch_ids_stay_per_batch() -> None:
    handler = Vectorized()
    rows = run(handler, 30, batch_size=8)
    assert handler.sizes == [30]
    assert {row["outcome"] for row in rows} == {PROCESSED}
    per_batch = Counter(row["batch_id"] for row in rows)
    assert per_batch == {f"test-w000-p00003-b{n:05d}": size for n, size in enumerate([8, 8, 8, 6])}
    assert {row["attempts"] for row in rows} == {1}


def test_a_failing_slice_falls_back_to_per_batch_retries_and_isolation() -> None:
    handler = Vectorized(frozenset({"tx-013"}))
    rows = run(handler, 30, batch_size=8)
    by_id = {row["transaction_id"]: row for row in rows}
    assert by_id["tx-013"]["outcome"] == FAILED
    assert by_id["tx-013"]["batch_id"] == "test-w000-p00003-b00001"
    # The slice call, then 8 -> 4 -> 2 -> 1 records.
    assert by_id["tx-013"]["attempts"] == 5
    assert {row["outcome"] for row in rows if row["transaction_id"] != "tx-013"} == {PROCESSED}
    assert handler.sizes == [30, 8, 8, 4, 4, 2, 1, 1, 2, 8, 6]


def test_slices_keep_the_batch_boundaries_of_rebatch() -> None:
    pieces = list(slices(records(25_003, size=7_000), 500))
    assert [(first, piece.num_rows) for first, piece in pieces] == [
        (0, 10_000), (20, 10_000), (40, 5_003)
    ]  # fmt: skip


def test_handler_can_fail_single_records_without_raising() -> None:
    class Picky(BatchHandler):
        name = "test"

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {
                    "transaction_id": r["transaction_id"],
                    "error_class": "Rejected",
                    "error_message": "no",
                }
                if r["transaction_id"] == "tx-001"
                else {"transaction_id": r["transaction_id"], "result": {"entry": 1}}
                for r in batch
            ]

    rows = run(Picky(), 3)
    assert [r["outcome"] for r in rows] == [PROCESSED, FAILED, PROCESSED]
    assert rows[0]["result"] == '{"entry": 1}'
    assert rows[1]["attempts"] == 1


def test_a_handler_that_drops_records_is_a_contract_error_per_record() -> None:
    class Lossy(BatchHandler):
        name = "test"

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{"transaction_id": r["transaction_id"]} for r in batch[1:]]

    rows = run(Lossy(), 2, batch_size=2)
    assert {r["error_class"] for r in rows} == {"HandlerContractError"}


def test_setup_failure_fails_the_task_so_spark_retries_it() -> None:
    class Broken(NoopHandler):
        def setup(self) -> None:
            raise ConnectionRefusedError("ledger down")

    with pytest.raises(ConnectionRefusedError):
        run(Broken(), 2)


def test_io_bound_handler_keeps_a_bounded_number_of_batches_in_flight() -> None:
    class Slow(BatchHandler):
        name = "test"
        concurrency = 3

        def __init__(self) -> None:
            self.active = 0
            self.peak = 0
            self.lock = threading.Lock()
            self.closed = False

        def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.05)
            with self.lock:
                self.active -= 1
            return [{"transaction_id": r["transaction_id"]} for r in batch]

        def teardown(self) -> None:
            self.closed = True

    handler = Slow()
    rows = run(handler, 40, batch_size=4)
    assert len({r["transaction_id"] for r in rows}) == 40
    assert handler.peak == 3
    assert handler.closed


def test_idempotency_key_depends_on_file_record_and_step_only() -> None:
    key = idempotency_key("ing_abc", "TX1", "financial")
    assert key == idempotency_key("ing_abc", "TX1", "financial")
    assert len({key, idempotency_key("ing_abd", "TX1", "financial"),
                idempotency_key("ing_abc", "TX2", "financial"),
                idempotency_key("ing_abc", "TX1", "http")}) == 4  # fmt: skip
