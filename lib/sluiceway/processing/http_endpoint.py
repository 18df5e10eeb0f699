"""The `http` handler: posts batches to an external endpoint (a ledger or a partner API).

Safe to retry because every request carries idempotency keys: each record's key in the body,
sha256 of its ingest id, transaction id and handler name, so the same record has the same
key on every attempt, task retry and re-run whatever batch it travels in. Endpoints must
deduplicate per record key: after an "applied, then timed out" answer the retry is then
recognised as a duplicate instead of booking the payment twice. The `Idempotency-Key` header
is a hash of the request's set of record keys (sorted, so the same records give the same
header in any order); batches change with what is pending, so a re-sent record can travel
with other records under another header, and deduplicating on the header alone is not enough.

What the answers mean:

- 2xx: the results. 408, 429, 5xx and timeouts: retried with backoff, then left pending.
- 401, 403, 404, 405, 407: the endpoint refuses every request (rotated credentials, a wrong
  URL or method), not these records: `EndpointRefused`, never retried nor bisected; the
  task sends nothing more, the records stay pending and the run exits 5 naming the status.
- Any other status (400, 409, 413, 422, ...): may be about the records, so the batch is
  split in halves (a 413 for a large batch goes away as it shrinks) until the refused record
  stands alone and becomes a dead letter. But when every record of a batch of at least 2,
  sent alone, is refused with the same status, the endpoint refuses everything (an API
  version change): the records stay pending and the run exits 5 (partition.endpoint_refusal).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from sluiceway.errors import ConfigurationError
from sluiceway.processing.handlers import BatchHandler
from sluiceway.processing.retry import EndpointRefused, PermanentError, RetryableError

RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
# Statuses about the endpoint, never about the records: what a person must check.
REFUSAL_HINTS = {
    401: "check the credentials",
    403: "check the credentials' permissions",
    404: "check the endpoint URL",
    405: "check the endpoint URL (it does not accept POST)",
    407: "check the proxy credentials",
}


class RateLimiter:
    """Token bucket: at most `rate` requests per second from one partition, small bursts allowed."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a request may go out."""
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                wait = (1.0 - self.tokens) / self.rate
            self.sleep(wait)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def batch_key(record_keys: Iterable[str]) -> str:
    """The `Idempotency-Key` of a request: the same set of record keys, the same key."""
    return hashlib.sha256("\n".join(sorted(set(record_keys))).encode()).hexdigest()[:32]


def status_text(status: int) -> str:
    """`401 Unauthorized`: the status with its reason phrase, when it has a standard one."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class HttpHandler(BatchHandler):
    """POST {"batch_key", "records": [...]} and expect {"results": [{"transaction_id", ...}]}."""

    name = "http"
    columns = ("idempotency_key", "account_id", "amount", "currency")

    def __init__(
        self,
        endpoint: str = "",
        timeout_seconds: float | str = 10.0,
        rate_per_second: float | str = 20.0,
        concurrency: int | str = 4,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"the http handler needs --handler-option endpoint=http(s)://host/path, "
                f"got {endpoint!r}"
            )
        self.endpoint = endpoint
        self.timeout_seconds = float(timeout_seconds)
        self.rate_per_second = float(rate_per_second)
        self.concurrency = int(concurrency)
        self._local: threading.local | None = None
        self._limiter: RateLimiter | None = None
        self._connections: list[http.client.HTTPConnection] = []

    def __getstate__(self) -> dict[str, Any]:
        # Clients are per partition: only the configuration travels to the executors.
        return {**self.__dict__, "_local": None, "_limiter": None, "_connections": []}

    def setup(self) -> None:
        self._local = threading.local()
        self._limiter = RateLimiter(self.rate_per_second)
        self._connections = []

    def teardown(self) -> None:
        for connection in self._connections:
            connection.close()
        self._connections = []

    def _connection(self) -> http.client.HTTPConnection:
        """One keep-alive connection per thread, reused for every batch it sends."""
        local = self._local
        if local is None:
            local = self._local = threading.local()
        connection: http.client.HTTPConnection | None = getattr(local, "connection", None)
        if connection is None:
            parts = urlsplit(self.endpoint)
            secure = parts.scheme == "https"
            kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
            connection = kind(parts.hostname or "", parts.port, timeout=self.timeout_seconds)
            local.connection = connection
            self._connections.append(connection)
        return connection

    def _drop_connection(self) -> None:
        # After a timeout the late answer could arrive on this socket: never reuse it.
        local = self._local
        connection = getattr(local, "connection", None)
        if local is not None and connection is not None:
            connection.close()
            local.connection = None

    def handle(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        key = batch_key(record["idempotency_key"] for record in records)
        body = json.dumps(
            {"batch_key": key, "records": [_payload(record) for record in records]}
        ).encode()
        path = urlsplit(self.endpoint).path or "/"
        if self._limiter is None:
            self.setup()
        assert self._limiter is not None, "setup() creates the rate limiter"
        self._limiter.acquire()
        connection = self._connection()
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
            response = connection.getresponse()
            payload = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            self._drop_connection()
            raise RetryableError(
                f"POST {self.endpoint} for batch {key} ({len(records)} records) failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        if response.will_close:
            self._drop_connection()
        return self._results(response, payload, key, len(records))

    def _results(
        self, response: http.client.HTTPResponse, payload: bytes, batch_key: str, count: int
    ) -> list[dict[str, Any]]:
        status = response.status
        where = f"POST {self.endpoint} for batch {batch_key} ({count} records)"
        if status in RETRYABLE_STATUS:
            raise RetryableError(
                f"{where} answered {status}; retrying",
                retry_after_seconds(response.getheader("Retry-After")),
            )
        answer = payload[:300].decode(errors="replace")
        if status in REFUSAL_HINTS:
            raise EndpointRefused(
                f"endpoint {self.endpoint} refused with {status_text(status)}: "
                f"{REFUSAL_HINTS[status]}; the records stay pending ({where}: {answer})"
            )
        if not 200 <= status < 300:
            raise PermanentError(
                f"{where} answered {status_text(status)}: {answer}; the endpoint refuses these "
                "records, fix them or the endpoint and re-run",
                status,
            )
        try:
            results = json.loads(payload)["results"]
        except (ValueError, KeyError, TypeError) as error:
            raise RetryableError(f"{where} answered {status} with an unreadable body") from error
        return [
            {
                "transaction_id": item["transaction_id"],
                "result": json.dumps(
                    {k: v for k, v in item.items() if k != "transaction_id"}, sort_keys=True
                ),
            }
            for item in results
        ]


def _payload(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "idempotency_key": record["idempotency_key"],
        "transaction_id": record["transaction_id"],
        "account_id": record.get("account_id"),
        "amount": str(record.get("amount")),
        "currency": record.get("currency"),
        "event_time": record["event_time"].isoformat() if record.get("event_time") else None,
    }
