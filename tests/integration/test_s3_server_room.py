"""The test run's S3 server has room for every bucket the suite creates, whatever the disk.

SeaweedFS gives each bucket volumes of its own. `weed mini` left to size itself allows one
volume per free GiB of disk, so on a machine with 11 GiB free the twelfth bucket of a run was
refused every write, and six upload tests failed in CI with `InternalError`
(sluiceway.local_stack.WEED_VOLUME_SLOTS). Later, on a machine with little disk left, every
upload test failed the same way: under 1 % of the disk free, weed marks its volumes read-only
(sluiceway.local_stack.WEED_MIN_FREE_SPACE).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.s3_server import S3Endpoint, seaweedfs
from sluiceway.local_stack import WEED_MIN_FREE_SPACE, WEED_VOLUME_SLOTS

pytestmark = pytest.mark.integration

GIB = 1024**3
MIB = 1024**2
# Enough to exceed a disk-sized count on a machine with up to this many GiB free.
MOST_BUCKETS = 150
SMALL_DISK_MIB = 400
LEFT_FREE_MIB = 3  # under 1 % of the small disk, over the floor the test gives weed


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


def test_a_bucket_takes_one_volume_slot_not_seven(s3_server: S3Endpoint) -> None:
    """`weed server` grows seven volumes per collection unless told otherwise: 143 buckets
    would fill the 1,000 slots."""
    if s3_server.data is None:
        pytest.skip("moto stands in for SeaweedFS: no volumes")
    client = s3_server.client()
    name = f"slots-{secrets.token_hex(3)}"
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="one.csv", Body=b"id,amount\n1,2.00\n")
    try:
        assert len(list(s3_server.data.glob(f"{name}_*.dat"))) == 1
    finally:
        client.delete_object(Bucket=name, Key="one.csv")
        client.delete_bucket(Bucket=name)


@pytest.fixture
def nearly_full_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs with under 1 % of it free (needs the right to mount, as root has)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MIB}m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        with open(disk / "filler", "wb") as filler:
            block = b"\0" * MIB
            for _ in range(SMALL_DISK_MIB - LEFT_FREE_MIB):
                filler.write(block)
        (disk / "weed").mkdir()
        yield disk / "weed"
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def test_a_disk_under_one_percent_free_still_takes_writes(nearly_full_disk: Path) -> None:
    """The stack's floor is a size, not weed's default of 1 % of the disk. The small disk
    stands in for a large one: the floor is lowered in proportion, which needs the flag the
    stack passes."""
    free = shutil.disk_usage(nearly_full_disk).free
    assert free < SMALL_DISK_MIB * MIB // 100

    def small_floor(argv: list[str]) -> list[str]:
        flag = f"-volume.minFreeSpace={WEED_MIN_FREE_SPACE}"
        assert flag in argv
        return [("-volume.minFreeSpace=1MiB" if arg == flag else arg) for arg in argv]

    server = seaweedfs(nearly_full_disk, small_floor)
    endpoint = next(server)
    try:
        client = endpoint.client()
        client.create_bucket(Bucket="nearly-full")
        client.put_object(Bucket="nearly-full", Key="one.csv", Body=b"id,amount\n1,2.00\n")
        body = client.get_object(Bucket="nearly-full", Key="one.csv")["Body"].read()
        assert body == b"id,amount\n1,2.00\n"
    finally:
        server.close()
