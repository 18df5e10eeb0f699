"""The AWS Lambda adapter: an existing `handler(event, context)` run unchanged as a handler.

Why its own module: it is the migration path from the old design, where a Step Functions
Map state sent ~500 records per Lambda invocation. It changes when that event shape or the
Lambda context does, not when the handler contract does. `handler_specs.resolve_handler` picks
it for `lambda:module:function` specs (docs/processing.md, "An existing AWS Lambda handler").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sluiceway.processing.handlers import RESULT_FIELDS, BatchHandler
from sluiceway.processing.retry import HandlerContractError

LAMBDA_PREFIX = "lambda:"


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that handlers actually read."""

    function_name: str
    aws_request_id: str
    timeout_seconds: float
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:sluiceway"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/sluiceway"
    log_stream_name: str = "sluiceway"
    started: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        """Time left of the old Lambda timeout, so handlers that check it behave as before."""
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


class LambdaHandler(BatchHandler):
    """Runs `handler(event, context)` unchanged on the event a Step Functions Map sent it.

    The event is the Distributed Map ItemBatcher shape, `{"Items": [...], "BatchInput": {...}}`,
    items JSON-safe (decimals and timestamps as strings). The handler may return a list of
    results, `{"results": [...]}`, and may report failed items the SQS way, with
    `{"batchItemFailures": [{"itemIdentifier": transaction_id}]}`.
    """

    def __init__(
        self,
        function: Callable[[dict[str, Any], LambdaContext], Any],
        name: str,
        batch_input: Mapping[str, str] | None = None,
        timeout_seconds: float = 900.0,
    ) -> None:
        self.function = function
        self.name = name
        self.batch_input = dict(batch_input or {})
        self.timeout_seconds = timeout_seconds

    def handle(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items = [{key: _json_safe(value) for key, value in r.items()} for r in records]
        keys = "\n".join(str(item.get("idempotency_key")) for item in items)
        context = LambdaContext(
            function_name=self.name.rsplit(":", 1)[-1],
            aws_request_id=hashlib.sha256(keys.encode()).hexdigest()[:32],
            timeout_seconds=self.timeout_seconds,
            started=time.monotonic(),
        )
        response = self.function({"Items": items, "BatchInput": self.batch_input}, context)
        return _lambda_results(records, response, self.name)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _lambda_results(
    records: list[dict[str, Any]], response: Any, name: str
) -> list[dict[str, Any]]:
    response = response or {}
    failures: set[str] = set()
    if isinstance(response, Mapping):
        failures = {
            str(item.get("itemIdentifier")) for item in response.get("batchItemFailures", [])
        }
        listed = response.get("results")
    else:
        listed = response
    by_id: dict[str, Any] = {}
    if isinstance(listed, list):
        by_id = {str(r["transaction_id"]): r for r in listed if isinstance(r, Mapping)}
    elif listed is not None:
        raise HandlerContractError(
            f"Lambda handler {name} returned {type(listed).__name__}; return a list of results, "
            "{'results': [...]} or {'batchItemFailures': [...]}"
        )
    results = []
    for record in records:
        transaction_id = str(record["transaction_id"])
        if transaction_id in failures:
            results.append(
                {
                    "transaction_id": transaction_id,
                    "error_class": "LambdaItemFailure",
                    "error_message": f"{name} listed {transaction_id} in batchItemFailures",
                }
            )
            continue
        result = by_id.get(transaction_id)
        payload = {k: v for k, v in (result or {}).items() if k != "transaction_id"}
        known = {k: payload.pop(k) for k in list(payload) if k in RESULT_FIELDS}
        results.append(
            {
                "transaction_id": transaction_id,
                "result": known.pop("result", None) or json.dumps(payload or "ok", default=str),
                **known,
            }
        )
    return results


__all__ = ["LAMBDA_PREFIX", "LambdaContext", "LambdaHandler"]
