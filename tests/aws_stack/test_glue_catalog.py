"""Iceberg's GlueCatalog on the local stack keeps Glue's optimistic lock.

GlueCatalog commits by GetTable (is `metadata_location` still the commit's base?) and then
UpdateTable with the `VersionId` it read; Glue refuses the update when another commit came
in between, and Iceberg then retries on the new `main`. moto ignores VersionId, so the stack
adds the check (lib/sluiceway/local_stack.py); without it a commit racing another would
silently replace it. Here a real Spark commit is held at Glue's door, between its GetTable
and its UpdateTable, while an independent writer (pyiceberg) commits on the same base.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from fixtures.aws_stack import StackNamespace, independent_catalog
from sluiceway.local_stack import LocalAwsStack

pytestmark = [pytest.mark.aws_stack, pytest.mark.integration]

UPDATE_TABLE = "AWSGlue.UpdateTable"
ROWS = pa.schema([pa.field("id", pa.int64()), pa.field("writer", pa.string())])

SPARK_INSERT = """
import sys
from sluiceway.settings import load_settings
from sluiceway.spark import build_session

settings = load_settings(arguments={"profile": "local-aws", "spark_master": "local[1]"})
spark = build_session(settings)
spark.sql(f"INSERT INTO lake.{sys.argv[1]}.t VALUES (1, 'spark')")
"""


@dataclass
class GlueDoor:
    """An HTTP proxy in front of moto that holds the first UpdateTable until `open`, and
    notes every UpdateTable: whether it carried a VersionId, and Glue's answer."""

    upstream: str
    updates: list[tuple[bool, int, str]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        is_update = handler.headers.get("X-Amz-Target") == UPDATE_TABLE
        if is_update and not self.arrived.is_set():
            self.arrived.set()
            assert self.opened.wait(120), "the held UpdateTable was never released"
        connection = http.client.HTTPConnection(self.upstream.removeprefix("http://"), timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "content-length"}
        connection.request(handler.command, handler.path, body, headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        if is_update:
            self.updates.append((b'"VersionId"' in body, response.status, data.decode()))
        handler.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def glue_door(aws_stack: LocalAwsStack) -> Iterator[GlueDoor]:
    door = GlueDoor(aws_stack.aws_api_url)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_POST(self) -> None:
            door.forward(self)

    door.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    door.server.daemon_threads = True
    threading.Thread(target=door.server.serve_forever, daemon=True).start()
    try:
        yield door
    finally:
        door.opened.set()
        door.server.shutdown()
        door.server.server_close()


def test_update_table_with_a_stale_version_id_is_refused(
    stack_namespace: StackNamespace,
) -> None:
    glue, database = stack_namespace.stack.client("glue"), stack_namespace.name
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "t"})
    read = glue.get_table(DatabaseName=database, Name="t")["Table"]["VersionId"]

    def update(version: str) -> None:
        glue.update_table(
            DatabaseName=database,
            TableInput={"Name": "t", "Parameters": {"metadata_location": version}},
            VersionId=version,
        )

    update(read)
    with pytest.raises(ClientError) as refused:
        update(read)
    assert refused.value.response["Error"]["Code"] == "ConcurrentModificationException"
    current = glue.get_table(DatabaseName=database, Name="t")["Table"]
    assert current["Parameters"] == {"metadata_location": read}, "the refused update changed it"


def test_a_glue_commit_that_lost_the_race_is_refused_and_retried_not_lost(
    stack_namespace: StackNamespace, glue_door: GlueDoor
) -> None:
    stack, namespace = stack_namespace.stack, stack_namespace.name
    catalog = independent_catalog(stack)
    catalog.create_namespace(namespace)
    table = catalog.create_table(
        (namespace, "t"), schema=ROWS, location=f"{stack.warehouse}/{namespace}.db/t"
    )
    environ = {**stack_namespace.environ(), "AWS_ENDPOINT_URL_GLUE": glue_door.url}
    spark = subprocess.Popen(
        [sys.executable, "-c", SPARK_INSERT, namespace],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Spark has read the table and written its metadata; its UpdateTable waits at the door.
        assert glue_door.arrived.wait(180), spark.communicate(timeout=60)
        table.append(pa.Table.from_pylist([{"id": 2, "writer": "pyiceberg"}], schema=ROWS))
        glue_door.opened.set()
        _output, errors = spark.communicate(timeout=300)
    finally:
        if spark.poll() is None:
            spark.kill()
    assert spark.returncode == 0, errors[-3000:]

    (first, *retries) = glue_door.updates
    assert first[:2] == (True, 400) and "ConcurrentModificationException" in first[2], first
    assert [update[:2] for update in retries] == [(True, 200)], retries
    rows = catalog.load_table((namespace, "t")).scan().to_arrow().sort_by("id").to_pylist()
    assert rows == [{"id": 1, "writer": "spark"}, {"id": 2, "writer": "pyiceberg"}]
