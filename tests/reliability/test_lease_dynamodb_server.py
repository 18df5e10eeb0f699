"""The DynamoDB writer lease over the wire: a holder paused (SIGSTOP) past its expiry is fenced.

moto's DynamoDB runs as a real HTTP server on 127.0.0.1 (moto's server mode), and the holder
is a real process that reaches it only through `AWS_ENDPOINT_URL_DYNAMODB`, the one thing
that differs from AWS. The holder takes the lease and is stopped with SIGSTOP; its lease
expires; another writer takes it over; the holder is resumed and tries to commit: it must
stop with exit code 6 (LEASE_LOST) and leave the other writer's lease in place.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sluiceway.errors import ExitCode
from sluiceway.lease import writer_lease
from sluiceway.settings import Settings, load_settings

pytestmark = pytest.mark.reliability

TABLE = "sluiceway-leases"
REGION = "eu-west-1"
EXPIRY_SECONDS = 3

HOLDER = """
import sys, time
from pathlib import Path
from sluiceway.errors import SluicewayError
from sluiceway.lease import writer_lease
from sluiceway.settings import load_settings

settings = load_settings(arguments=dict(
    profile="glue", warehouse="s3://lake/warehouse", namespace="sluiceway_dev",
    lease_table=sys.argv[1], aws_region=sys.argv[2], lease_expiry_seconds=int(sys.argv[3]),
))
go = Path(sys.argv[4])
try:
    with writer_lease(settings, "ingest") as fence:
        print("held", fence.token, flush=True)
        while not go.exists():
            time.sleep(0.05)
        fence.check("the publish of transactions")
        print("committed", flush=True)
except SluicewayError as error:
    print(error, file=sys.stderr)
    sys.exit(error.exit_code)
"""


@pytest.fixture
def dynamodb_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's DynamoDB on 127.0.0.1, with the stack's lease table; its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "lease_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lease_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield endpoint
    server.stop()


def lease_token(endpoint: str) -> Any:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    key = {"lease_name": {"S": "sluiceway_dev"}}
    item = client.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
    return item["token"]["S"] if item else None


def aws_settings() -> Settings:
    return load_settings(
        arguments={
            "profile": "glue",
            "warehouse": "s3://lake/warehouse",
            "namespace": "sluiceway_dev",
            "lease_table": TABLE,
            "aws_region": REGION,
            "lease_expiry_seconds": EXPIRY_SECONDS,
        }
    )


def test_a_holder_paused_past_its_expiry_is_fenced_when_it_resumes(
    dynamodb_server: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, TABLE, REGION, str(EXPIRY_SECONDS), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert holder.stdout is not None
    first = holder.stdout.readline().split()
    assert first[:1] == ["held"], holder.communicate()
    assert lease_token(dynamodb_server) == first[1]

    os.kill(holder.pid, signal.SIGSTOP)
    try:
        time.sleep(EXPIRY_SECONDS + 1.5)
        with writer_lease(aws_settings(), "process") as taker:
            assert lease_token(dynamodb_server) == taker.token, "the expired lease was taken"
            go.touch()
            os.kill(holder.pid, signal.SIGCONT)
            output, errors = holder.communicate(timeout=60)
            assert holder.returncode == ExitCode.LEASE_LOST, (output, errors)
            assert "committed" not in output
            assert "the publish of transactions was not committed" in errors
            assert lease_token(dynamodb_server) == taker.token, "the zombie left it in place"
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
    assert lease_token(dynamodb_server) is None
