"""Which S3 failures the uploader retries, how it backs off, and when it gives up."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from sluiceway.errors import ConfigurationError
from sluiceway.upload.retry import RetryPolicy, is_precondition_failed, is_transient

pytestmark = pytest.mark.unit


def s3_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UploadPart",
    )


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        s3_error(503, "SlowDown"),
        s3_error(500, "InternalError"),
        s3_error(400, "BadDigest"),
        s3_error(400, "RequestTimeout"),
    ],
    ids=["endpoint", "closed", "503", "500", "bad-digest", "request-timeout"],
)
def test_network_drops_server_trouble_and_corrupted_bodies_are_retried(
    error: Exception,
) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        s3_error(412, "PreconditionFailed"),
        s3_error(403, "AccessDenied"),
        s3_error(404, "NoSuchBucket"),
        ValueError("a bug"),
    ],
)
def test_answers_a_retry_cannot_change_are_not_retried(error: Exception) -> None:
    assert not is_transient(error)


def test_412_is_recognised_as_the_existing_object_answer() -> None:
    assert is_precondition_failed(s3_error(412, "PreconditionFailed"))
    assert not is_precondition_failed(s3_error(409, "ConditionalRequestConflict"))


def flaky(failures: list[Exception]) -> Callable[[], str]:
    def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    return operation


def test_transient_failures_are_retried_with_doubling_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=4, first_delay=1.0, max_delay=60.0)
    operation = flaky([s3_error(503, "SlowDown"), EndpointConnectionError(endpoint_url="x")])

    with caplog.at_level(logging.WARNING):
        result = policy.call(operation, "UploadPart 1/3", logging.getLogger("t"), sleeps.append)

    assert result == "done"
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0
    events = [record.fields for record in caplog.records]
    assert [(e["event"], e["attempt"]) for e in events] == [("retry", 1), ("retry", 2)]
    assert events[0]["operation"] == "UploadPart 1/3"


def test_the_last_error_propagates_when_attempts_run_out() -> None:
    sleeps: list[float] = []
    errors = [s3_error(500, "InternalError") for _ in range(3)]
    policy = RetryPolicy(attempts=3, first_delay=0.0)

    with pytest.raises(ClientError) as raised:
        policy.call(flaky(list(errors)), "PutObject", logging.getLogger("t"), sleeps.append)

    assert raised.value is errors[-1]
    assert len(sleeps) == 2


def test_a_permanent_error_is_raised_at_once() -> None:
    sleeps: list[float] = []
    with pytest.raises(ClientError, match="AccessDenied"):
        RetryPolicy().call(
            flaky([s3_error(403, "AccessDenied")]),
            "PutObject",
            logging.getLogger("t"),
            sleeps.append,
        )
    assert sleeps == []


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=20, first_delay=2.0, max_delay=10.0)
    assert max(policy.delay(attempt) for attempt in range(1, 20)) <= 10.0


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="--attempts"):
        RetryPolicy(attempts=0)
