"""Which handler errors are worth another attempt, and how long to wait before it.

The old design retried whole Lambda batches from Step Functions; here a batch is retried
inside its Spark task, with exponential backoff and full jitter so that many partitions
hitting the same throttled endpoint do not retry in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sluiceway.errors import SluicewayError


class RetryableError(SluicewayError):
    """A failure that another attempt may not hit (timeout, throttling, a 5xx)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EndpointRefused(RetryableError):
    """The endpoint refuses every request whatever its records (credentials, URL, method).

    Retrying within seconds meets the same refusal, so the engine does not retry it, does not
    bisect, and sends nothing more from the task; the records stay pending for a later run.
    """


class PermanentError(SluicewayError):
    """A failure that repeats on every attempt (a rejected record, a missing reference rate).

    `status` is the endpoint's answer when it refused the request (an HTTP 400, 413, 422):
    when every record of a batch, sent alone, is refused with the same status, the endpoint
    refuses everything and the records stay pending (partition.endpoint_refusal).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HandlerContractError(PermanentError):
    """The handler returned something the engine cannot match to its input records."""


def is_retryable(error: BaseException) -> bool:
    """Timeouts and dropped connections are transient; anything else unknown is not retried."""
    if isinstance(error, PermanentError):
        return False
    return isinstance(error, RetryableError | TimeoutError | ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per batch and the backoff between them."""

    max_attempts: int = 4
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 10.0
    max_retry_after_seconds: float = 30.0

    def delay(self, attempt: int, error: BaseException, rng: random.Random) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based).

        A server's Retry-After wins over the computed backoff (it knows its own load), capped
        so a misbehaving server cannot park a task for an hour.
        """
        retry_after: float | None = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_seconds)
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)
