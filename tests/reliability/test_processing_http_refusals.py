"""The http handler against a real endpoint on 127.0.0.1 that refuses: outages, not poison.

An endpoint answering 401 to everything (rotated credentials) used to be bisected down to
single records and every record dead-lettered, with exit 0. Refusals of the endpoint now
leave the records pending after a request or so per batch in flight, and the run exits 5.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest

from sluiceway.errors import ExitCode
from sluiceway.processing import ProcessOptions, process_records
from sluiceway.processing.http_endpoint import HttpHandler
from sluiceway.processing.partition import (
    FAILED,
    PENDING,
    PROCESSED,
    PartitionPlan,
    idempotency_key,
    process_partition,
)
from sluiceway.processing.retry import RetryPolicy
from sluiceway.processing.run import RecordsLeftPending
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

pytestmark = pytest.mark.reliability

NO_WAIT = RetryPolicy(max_attempts=4, base_delay_seconds=0.001, max_delay_seconds=0.001)


@dataclass
class Endpoint:
    """A server answering `status_for(records)` to each POST; what it was sent."""

    url: str
    status_for: Callable[[list[dict[str, Any]]], int] = lambda records: 200
    keys: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return len(self.keys)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint("")

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with served.lock:
                served.keys.append(self.headers.get("Idempotency-Key", ""))
                served.bodies.append(body)
            status = served.status_for(body["records"])
            results = [{"transaction_id": r["transaction_id"]} for r in body["records"]]
            data = json.dumps({"results": results} if status == 200 else {"error": "no"})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/ledger/batches"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": f"TX{i:08d}",
            "ingest_id": "ing_test",
            "idempotency_key": idempotency_key("ing_test", f"TX{i:08d}", "http"),
            "event_time": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            "account_id": "DE89000000000000000001",
            "amount": Decimal("12.50"),
            "currency": "EUR",
        }
        for i in range(count)
    ]


def run_partition(url: str, count: int, batch_size: int, concurrency: int) -> list[dict]:
    """One Spark task's work, without Spark: the real handler, the real engine code."""
    handler = HttpHandler(url, timeout_seconds=5, rate_per_second=1000, concurrency=concurrency)
    batches = pa.Table.from_pylist(records(count)).to_batches()
    plan = PartitionPlan(handler, batch_size, NO_WAIT)
    outcome = process_partition(batches, plan, partition_id=0, sleep=lambda _: None)
    return pa.Table.from_batches(list(outcome)).to_pylist()


def test_an_endpoint_answering_401_to_everything_leaves_every_record_pending_and_exits_5(
    spark, isolated_settings, seed, endpoint
) -> None:
    settings = isolated_settings
    endpoint.status_for = lambda records: 401
    ingest_id = seed(spark, settings, 120, name="refused.csv", every_no_rate=0)
    partitions, concurrency = 2, 2
    options = ProcessOptions(
        handler="http",
        handler_options={"endpoint": endpoint.url, "concurrency": str(concurrency)},
        batch_size=10,
        partitions=partitions,
        base_delay_seconds=0.01,
    )

    with pytest.raises(RecordsLeftPending) as raised:
        process_records(spark, settings, options, ingest_id=ingest_id)

    assert raised.value.exit_code == ExitCode.ENDPOINT_UNAVAILABLE == 5
    assert raised.value.result.left_pending == 120
    message = str(raised.value)
    assert "120 records left pending" in message
    assert f"endpoint {endpoint.url} refused with 401 Unauthorized: check the credentials" in (
        message
    )
    # One request per batch in flight per task: no retries, no bisection (it made 399).
    assert 0 < endpoint.requests <= partitions * concurrency, endpoint.requests
    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
        assert spark.table(settings.table(table)).count() == 0, table


@pytest.mark.parametrize(
    ("status", "named"),
    [
        (401, "401 Unauthorized: check the credentials"),
        (403, "403 Forbidden: check the credentials' permissions"),
        (404, "404 Not Found: check the endpoint URL"),
        (405, "405 Method Not Allowed: check the endpoint URL"),
        (407, "407 Proxy Authentication Required: check the proxy credentials"),
    ],
)
def test_an_endpoint_level_refusal_is_sent_once_per_batch_in_flight_and_left_pending(
    endpoint, status: int, named: str
) -> None:
    endpoint.status_for = lambda records: status

    rows = run_partition(endpoint.url, 40, batch_size=8, concurrency=2)

    assert {row["outcome"] for row in rows} == {PENDING}
    assert endpoint.requests <= 2, endpoint.requests
    own = [row for row in rows if row["error_class"] == "EndpointRefused"]
    assert own and all(f"refused with {named}" in row["error_message"] for row in own)


def test_an_endpoint_refusing_every_record_with_400_is_an_outage_not_poison(endpoint) -> None:
    endpoint.status_for = lambda records: 400

    rows = run_partition(endpoint.url, 24, batch_size=8, concurrency=1)

    assert {row["outcome"] for row in rows} == {PENDING}
    # The first batch bisected to single records (15 requests), the breaker kept the rest.
    assert endpoint.requests == 15
    assert "refused with status 400" in rows[0]["error_message"]
    assert "400 Bad Request" in rows[0]["error_message"]


def test_a_413_splits_the_batch_and_only_a_record_too_large_alone_is_a_dead_letter(
    endpoint,
) -> None:
    huge = "TX00000005"
    endpoint.status_for = lambda records: (
        413 if len(records) > 2 or any(r["transaction_id"] == huge for r in records) else 200
    )

    rows = run_partition(endpoint.url, 16, batch_size=8, concurrency=1)

    by_outcome = {row["transaction_id"]: row["outcome"] for row in rows}
    assert by_outcome.pop(huge) == FAILED
    assert set(by_outcome.values()) == {PROCESSED}


def test_the_idempotency_header_depends_on_the_set_of_records_only(endpoint) -> None:
    handler = HttpHandler(endpoint.url)
    a, b, c = records(3)

    for batch in ([a, b, c], [c, a, b], [a, b]):
        handler.handle(batch)
    handler.teardown()

    same, reordered, other = endpoint.keys
    assert same == reordered != other
    assert [body["batch_key"] for body in endpoint.bodies] == endpoint.keys
    # Each record's own key is in the body, whatever batch it travels in.
    first, _, last = endpoint.bodies
    assert first["records"][0]["idempotency_key"] == last["records"][0]["idempotency_key"]
    assert first["records"][0]["idempotency_key"] == a["idempotency_key"]
