"""Refusals by the endpoint are outages, refusals of a record are dead letters: the engine's rule.

Plain Arrow batches and fake handlers, no Spark and no server (the real server is in
tests/reliability/test_processing_http_refusals.py).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from sluiceway.processing.handlers import BatchHandler
from sluiceway.processing.partition import (
    FAILED,
    PENDING,
    PROCESSED,
    PartitionPlan,
    idempotency_key,
    process_partition,
)
from sluiceway.processing.retry import EndpointRefused, PermanentError, RetryPolicy

pytestmark = pytest.mark.unit

NO_WAIT = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.001)


def run(handler: BatchHandler, count: int, batch_size: int) -> list[dict[str, Any]]:
    rows = [
        {
            "transaction_id": f"tx-{i:03d}",
            "ingest_id": "ing_test",
            "idempotency_key": idempotency_key("ing_test", f"tx-{i:03d}", "test"),
            "event_time": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        }
        for i in range(count)
    ]
    batches = pa.Table.from_pylist(rows).to_batches()
    outcome = process_partition(
        batches, PartitionPlan(handler, batch_size, NO_WAIT), partition_id=0, sleep=lambda _: None
    )
    return pa.Table.from_batches(list(outcome)).to_pylist()


class Refusing(BatchHandler):
    """Raises `error(batch)` for every batch that `refuses(batch)`; answers the others."""

    name = "test"

    def __init__(self, refuse: Any, concurrency: int = 1) -> None:
        self.refuse = refuse
        self.concurrency = concurrency
        self.calls = 0
        self.lock = threading.Lock()

    def handle(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            self.calls += 1
        error = self.refuse([r["transaction_id"] for r in batch])
        if error is not None:
            raise error
        return [{"transaction_id": r["transaction_id"], "result": "ok"} for r in batch]


def outcomes(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(row["outcome"] for row in rows)


def test_an_endpoint_refusal_is_neither_retried_nor_bisected_and_stops_the_task() -> None:
    handler = Refusing(lambda ids: EndpointRefused("refused with 401 Unauthorized"))
    rows = run(handler, 40, batch_size=8)
    assert outcomes(rows) == {PENDING: 40}
    assert handler.calls == 1
    by_batch = {row["batch_id"]: row for row in rows}
    first, later = by_batch["test-w000-p00000-b00000"], by_batch["test-w000-p00000-b00004"]
    assert (first["error_class"], first["attempts"]) == ("EndpointRefused", 1)
    assert later["error_class"] == "CircuitOpen" and "401 Unauthorized" in later["error_message"]


def test_a_batch_whose_records_are_all_refused_alone_with_one_status_stays_pending() -> None:
    handler = Refusing(lambda ids: PermanentError("answered 400 Bad Request", 400))
    rows = run(handler, 24, batch_size=8)
    assert outcomes(rows) == {PENDING: 24}
    # The first batch is bisected to its 8 single records (1 + 2 + 4 + 8 calls), then the
    # breaker keeps the other two batches from being sent.
    assert handler.calls == 15
    first = [row for row in rows if row["batch_id"].endswith("b00000")]
    assert {row["error_class"] for row in first} == {"EndpointRefused"}
    assert all("refused with status 400" in row["error_message"] for row in first)


def test_a_breaker_opened_mid_bisection_leaves_no_dead_letter_behind() -> None:
    # Four batches bisect at once; when the first concludes "endpoint refusal", the others
    # have some single records refused and the rest not sent: none of them is poison.
    handler = Refusing(lambda ids: PermanentError("answered 400 Bad Request", 400), concurrency=4)
    rows = run(handler, 64, batch_size=8)
    assert outcomes(rows) == {PENDING: 64}


def test_records_refused_alone_with_different_statuses_are_dead_letters() -> None:
    def refuse(ids: list[str]) -> PermanentError:
        status = 400 if ids[0] < "tx-004" else 422
        return PermanentError(f"answered {status}", status)

    rows = run(Refusing(refuse), 8, batch_size=8)
    assert outcomes(rows) == {FAILED: 8}
    assert {row["error_class"] for row in rows} == {"PermanentError"}


def test_one_refused_record_among_answered_ones_is_a_dead_letter() -> None:
    def refuse(ids: list[str]) -> PermanentError | None:
        return PermanentError("answered 400", 400) if "tx-005" in ids else None

    rows = run(Refusing(refuse), 16, batch_size=8)
    assert outcomes(rows) == {PROCESSED: 15, FAILED: 1}
    assert [row["transaction_id"] for row in rows if row["outcome"] == FAILED] == ["tx-005"]


def test_with_batch_size_one_records_refused_with_one_status_are_dead_letters() -> None:
    handler = Refusing(lambda ids: PermanentError("answered 400", 400))
    rows = run(handler, 4, batch_size=1)
    assert outcomes(rows) == {FAILED: 4}
    assert handler.calls == 4
