"""Retries with exponential backoff for the failures that a second attempt can fix.

botocore's own retries are switched off for the uploader's client (see transfer.s3_client):
each retry here re-reads the bytes from disk, logs a JSON line, and is bounded by one
policy a person can set from the command line.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from sluiceway.errors import ConfigurationError

T = TypeVar("T")

# S3 error codes worth another attempt: throttling, server trouble, and a body that arrived
# different from what was sent (the checksum or payload hash did not match).
TRANSIENT_CODES = frozenset(
    {
        "BadDigest",
        "XAmzContentSHA256Mismatch",
        "IncompleteBody",
        "RequestTimeout",
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "ConditionalRequestConflict",
    }
)


def error_code(error: BaseException) -> str:
    """The S3 error code of a ClientError ("412" style codes included), else the class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return type(error).__name__


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a ClientError, None for network-level errors."""
    if isinstance(error, ClientError):
        status: int | None = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status
    return None


def is_precondition_failed(error: BaseException) -> bool:
    """True for the 412 that `If-None-Match: *` returns when the key already exists."""
    return http_status(error) == 412 or error_code(error) == "PreconditionFailed"


def is_transient(error: BaseException) -> bool:
    """Network drops, timeouts, 5xx, throttling and corrupted-in-transit bodies."""
    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        status = http_status(error) or 0
        return status >= 500 or error_code(error) in TRANSIENT_CODES
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one S3 request."""

    attempts: int = 5
    first_delay: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0:
            raise ConfigurationError(
                f"retry policy attempts={self.attempts}, first delay={self.first_delay}s: "
                "attempts must be at least 1 and the delay not negative; fix --attempts "
                "or --retry-delay"
            )

    def delay(self, attempt: int) -> float:
        """Backoff before attempt `attempt + 1`: doubling, capped, with jitter so that
        parallel parts do not retry in lockstep."""
        backoff = min(self.max_delay, self.first_delay * 2.0 ** (attempt - 1))
        return backoff * random.uniform(0.5, 1.0)

    def call(
        self,
        operation: Callable[[], T],
        describe: str,
        logger: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Run `operation`, retrying transient errors; the last error propagates."""
        attempt = 1
        while True:
            try:
                return operation()
            except Exception as error:
                if attempt >= self.attempts or not is_transient(error):
                    raise
                pause = self.delay(attempt)
                logger.warning(
                    "retrying %s after %s",
                    describe,
                    error_code(error),
                    extra={
                        "fields": {
                            "event": "retry",
                            "operation": describe,
                            "attempt": attempt,
                            "error": str(error),
                            "sleep_seconds": round(pause, 3),
                        }
                    },
                )
                sleep(pause)
                attempt += 1
