"""The writer lease of s3:// warehouses, on DynamoDB.

DynamoDB has no local equivalent here, so these tests use moto's in-process mock of the
DynamoDB API (`mock_aws`); the conditional writes, TTL attribute and key names are the ones
the CloudFormation lease table declares (partition key `lease_name`, TTL `expires_at`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sluiceway.errors import ConfigurationError, ExitCode
from sluiceway.lease import LeaseLostError, WriterBusyError, lease_for, writer_lease
from sluiceway.settings import Settings, load_settings

pytestmark = pytest.mark.unit

TABLE = "sluiceway-leases"
REGION = "eu-west-1"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "lease_name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lease_name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        yield client


def aws_settings(**overrides: Any) -> Settings:
    return load_settings(
        arguments={
            "profile": "glue",
            "warehouse": "s3://lake/warehouse",
            "namespace": "sluiceway_dev",
            "lease_table": TABLE,
            "aws_region": REGION,
            **overrides,
        }
    )


def lease_item(client: Any) -> dict[str, Any] | None:
    key = {"lease_name": {"S": "sluiceway_dev"}}
    return client.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")


def test_a_second_writer_is_busy_until_the_first_releases(dynamodb) -> None:
    settings = aws_settings()
    with writer_lease(settings, "ingest") as fence:
        me = fence.holder
        item = lease_item(dynamodb)
        assert item is not None
        assert (item["job"]["S"], item["token"]["S"], item["pid"]["N"]) == (
            "ingest", me.token, str(me.pid),
        )  # fmt: skip
        assert int(item["expires_at"]["N"]) > time.time() + 200
        with pytest.raises(WriterBusyError) as busy, writer_lease(settings, "process"):
            pytest.fail("two writers held the lease")
        assert busy.value.exit_code == ExitCode.BUSY
        assert str(busy.value).startswith(
            f"namespace sluiceway_dev is being written by ingest (pid {me.pid} on {me.host}, "
            f"since {me.started_at}), lease DynamoDB table {TABLE}, lease_name sluiceway_dev: "
            "process skipped"
        )
    assert lease_item(dynamodb) is None
    with writer_lease(settings, "process"):
        assert lease_item(dynamodb)["job"]["S"] == "process"


def test_an_expired_lease_of_a_dead_writer_is_taken_over(dynamodb) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "lease_name": {"S": "sluiceway_dev"},
            "token": {"S": "dead-run"},
            "job": {"S": "ingest"},
            "expires_at": {"N": str(int(time.time()) - 5)},
        },
    )
    with writer_lease(aws_settings(), "process") as fence:
        assert lease_item(dynamodb)["token"]["S"] == fence.token


def test_the_heartbeat_keeps_pushing_the_expiry_forward(dynamodb) -> None:
    with writer_lease(aws_settings(lease_expiry_seconds=4), "process"):
        first = int(lease_item(dynamodb)["expires_at"]["N"])
        time.sleep(2.5)  # two beats, one every second
        assert int(lease_item(dynamodb)["expires_at"]["N"]) >= first + 1


def take_over(client: Any) -> None:
    """Another writer took the lease after an expiry."""
    client.put_item(
        TableName=TABLE,
        Item={
            "lease_name": {"S": "sluiceway_dev"},
            "token": {"S": "other-run"},
            "expires_at": {"N": str(int(time.time()) + 600)},
        },
    )


def test_a_lease_lost_during_the_run_fails_it_with_its_own_code_and_is_not_deleted(
    dynamodb,
) -> None:
    lost = pytest.raises(LeaseLostError, match="is no longer this run's")
    with lost as error, writer_lease(aws_settings(lease_expiry_seconds=4), "process"):
        take_over(dynamodb)
        time.sleep(1.5)
    assert error.value.exit_code == ExitCode.LEASE_LOST != ExitCode.BUSY
    assert lease_item(dynamodb)["token"]["S"] == "other-run"


def test_the_fence_refuses_a_commit_at_once_after_a_takeover(dynamodb) -> None:
    """No waiting for a heartbeat: the check right before a commit asks DynamoDB itself."""
    with pytest.raises(LeaseLostError) as lost, writer_lease(aws_settings(), "ingest") as fence:
        fence.check("the ledger row")
        take_over(dynamodb)
        fence.check("the publish of transactions")
        pytest.fail("a commit went through after the lease was taken over")
    assert "ingest: the publish of transactions was not committed" in str(lost.value)


def test_a_holder_past_its_own_expiry_is_fenced_even_if_nobody_took_over(dynamodb) -> None:
    """A paused holder cannot know whether another writer ran meanwhile: it must stop."""
    settings = aws_settings(lease_expiry_seconds=3)
    with pytest.raises(LeaseLostError), writer_lease(settings, "process") as fence:
        fence.lease.valid_until = time.monotonic() - 1  # as after a pause of > 3 s
        fence.check("a wave of results")
    assert lease_item(dynamodb) is None  # released: the token was still ours


def test_a_renewal_that_keeps_failing_marks_the_lease_lost_by_its_expiry(
    dynamodb, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluiceway.lease.dynamodb import DynamoDbLease

    def unreachable(self: DynamoDbLease, me: object) -> bool:
        raise TimeoutError("DynamoDB did not answer")

    monkeypatch.setattr(DynamoDbLease, "renew", unreachable)
    lost = pytest.raises(LeaseLostError)
    with lost, writer_lease(aws_settings(lease_expiry_seconds=3), "process") as fence:
        time.sleep(3.5)
        assert fence.released(), "the heartbeat marked the lease lost at its expiry"
        fence.check("a wave of results")


def test_the_lease_client_has_short_timeouts_and_bounded_retries(dynamodb) -> None:
    client = lease_for(aws_settings()).client  # type: ignore[attr-defined]
    assert client.meta.config.connect_timeout <= 5
    assert client.meta.config.read_timeout <= 10
    assert client.meta.config.retries["total_max_attempts"] <= 4


def test_a_missing_lease_table_setting_or_table_is_a_configuration_error(dynamodb) -> None:
    with pytest.raises(ConfigurationError, match="set SLUICEWAY_LEASE_TABLE"):
        lease_for(aws_settings(lease_table=""))
    missing = pytest.raises(ConfigurationError, match="writer-lease table nope does not exist")
    with missing, writer_lease(aws_settings(lease_table="nope"), "process"):
        pytest.fail("a lease without a table")


def test_the_lease_table_comes_from_the_environment() -> None:
    settings = load_settings(environ={"SLUICEWAY_LEASE_TABLE": TABLE})
    assert settings.lease_table == TABLE
