"""The test run's S3 server has room for every bucket the suite creates, whatever the disk.

SeaweedFS gives each bucket volumes of its own. `weed mini` left to size itself allows one
volume per free GiB of disk, so on a machine with 11 GiB free the twelfth bucket of a run was
refused every write, and six upload tests failed in CI with `InternalError`
(sluiceway.local_stack.WEED_VOLUME_SLOTS).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile

import pytest

from fixtures.s3_server import S3Endpoint
from sluiceway.local_stack import WEED_VOLUME_SLOTS

pytestmark = pytest.mark.integration

GIB = 1024**3
# Enough to exceed a disk-sized count on a machine with up to this many GiB free.
MOST_BUCKETS = 150


def test_more_buckets_than_free_gib_each_take_a_write(s3_server: S3Endpoint) -> None:
    free_gib = shutil.disk_usage(tempfile.gettempdir()).free // GIB
    buckets = min(free_gib + 2, MOST_BUCKETS)
    assert buckets < WEED_VOLUME_SLOTS / 2
    client = s3_server.client()
    run = secrets.token_hex(3)
    names = [f"room-{run}-{number:03d}" for number in range(buckets)]
    for name in names:
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="one.csv", Body=b"id,amount\n1,2.00\n")
    assert [client.get_object(Bucket=name, Key="one.csv")["ContentLength"] for name in names] == [
        17
    ] * buckets
    for name in names:
        client.delete_object(Bucket=name, Key="one.csv")
        client.delete_bucket(Bucket=name)
