"""The handler interface: name resolution, the Lambda adapter, the result contract."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.processing.financial import FinancialHandler
from sluiceway.processing.handler_specs import resolve_handler
from sluiceway.processing.handlers import FunctionHandler, NoopHandler
from sluiceway.processing.http_endpoint import HttpHandler, RateLimiter, retry_after_seconds
from sluiceway.processing.lambda_handler import LambdaHandler
from sluiceway.processing.retry import HandlerContractError

pytestmark = pytest.mark.unit


def batch(*ids: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {
                "transaction_id": i,
                "idempotency_key": f"key-{i}",
                "amount": Decimal("12.30"),
                "event_time": datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
            }
            for i in ids
        ]
    )


def old_lambda(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A handler as it ran on Lambda: Step Functions Map items in, partial failures out."""
    assert context.get_remaining_time_in_millis() > 0
    assert event["BatchInput"] == {"ledger": "main"}
    results = [
        {"transaction_id": item["transaction_id"], "booked": item["amount"]}
        for item in event["Items"]
        if item["transaction_id"] != "TX2"
    ]
    return {"results": results, "batchItemFailures": [{"itemIdentifier": "TX2"}]}


def test_lambda_handler_runs_unchanged_on_the_map_state_event() -> None:
    handler = resolve_handler(f"lambda:{__name__}:old_lambda", {"ledger": "main"})
    assert isinstance(handler, LambdaHandler)
    out = handler.handle_arrow(batch("TX1", "TX2")).to_pylist()
    assert out[0]["result"] == '{"booked": "12.30"}'
    assert out[0]["error_class"] is None
    assert out[1]["error_class"] == "LambdaItemFailure"
    assert handler.name == f"lambda:{__name__}:old_lambda"


def test_lambda_items_are_json_safe_and_carry_the_idempotency_key() -> None:
    seen: list[dict[str, Any]] = []

    def capture(event: dict[str, Any], context: Any) -> list[dict[str, Any]]:
        seen.extend(event["Items"])
        return [{"transaction_id": item["transaction_id"]} for item in event["Items"]]

    LambdaHandler(capture, name="lambda:x:capture").handle_arrow(batch("TX1"))
    assert seen == [
        {
            "transaction_id": "TX1",
            "idempotency_key": "key-TX1",
            "amount": "12.30",
            "event_time": "2026-11-25T09:30:00+00:00",
        }
    ]


def test_batch_function_must_answer_every_record() -> None:
    handler = FunctionHandler(lambda records: [{"transaction_id": "TX1"}])
    with pytest.raises(HandlerContractError, match="no result for 1 of 2 records"):
        handler.handle_arrow(batch("TX1", "TX2"))


def test_builtin_and_module_handlers_resolve_by_name() -> None:
    assert isinstance(resolve_handler("noop"), NoopHandler)
    assert isinstance(resolve_handler("financial"), FinancialHandler)
    http = resolve_handler("http", {"endpoint": "http://127.0.0.1:9/x", "concurrency": "2"})
    assert isinstance(http, HttpHandler) and http.concurrency == 2
    custom = resolve_handler("sluiceway.processing.handlers:NoopHandler")
    assert custom.name == "sluiceway.processing.handlers:NoopHandler"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "unknown handler 'nonsense'"),
        ("no.such.module:f", "cannot load handler"),
        ("http", "endpoint=http"),
    ],
)
def test_bad_handler_names_say_what_to_use(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_handler(spec)


def test_rate_limiter_spaces_requests_beyond_the_burst() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(12):
        limiter.acquire()
    # 4 go out at once (the burst), the next 8 at 4 per second.
    assert now[0] == pytest.approx(2.0)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
