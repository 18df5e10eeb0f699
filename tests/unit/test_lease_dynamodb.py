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
    with writer_lease(settings, "ingest") as me:
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
    with writer_lease(aws_settings(), "process") as me:
        assert lease_item(dynamodb)["token"]["S"] == me.token


def test_the_heartbeat_keeps_pushing_the_expiry_forward(dynamodb) -> None:
    with writer_lease(aws_settings(lease_expiry_seconds=4), "process"):
        first = int(lease_item(dynamodb)["expires_at"]["N"])
        time.sleep(2.5)  # two beats, one every second
        assert int(lease_item(dynamodb)["expires_at"]["N"]) >= first + 1


def test_a_lease_lost_during_the_run_fails_it_and_is_not_deleted(dynamodb) -> None:
    lost = pytest.raises(LeaseLostError, match="expired during the run")
    with lost, writer_lease(aws_settings(lease_expiry_seconds=4), "process"):
        dynamodb.put_item(  # another writer took it over after an expiry
            TableName=TABLE,
            Item={
                "lease_name": {"S": "sluiceway_dev"},
                "token": {"S": "other-run"},
                "expires_at": {"N": str(int(time.time()) + 600)},
            },
        )
        time.sleep(1.5)
    assert lease_item(dynamodb)["token"]["S"] == "other-run"


def test_a_missing_lease_table_setting_or_table_is_a_configuration_error(dynamodb) -> None:
    with pytest.raises(ConfigurationError, match="set SLUICEWAY_LEASE_TABLE"):
        lease_for(aws_settings(lease_table=""))
    missing = pytest.raises(ConfigurationError, match="writer-lease table nope does not exist")
    with missing, writer_lease(aws_settings(lease_table="nope"), "process"):
        pytest.fail("a lease without a table")


def test_the_lease_table_comes_from_the_environment() -> None:
    settings = load_settings(environ={"SLUICEWAY_LEASE_TABLE": TABLE})
    assert settings.lease_table == TABLE
