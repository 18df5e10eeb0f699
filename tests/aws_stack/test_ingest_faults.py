"""Faults of the ingest job on the production stack: real Spark ingests as subprocesses, the
writer lease in DynamoDB, the tables in the Glue catalog, the landing file in a versioned
S3 bucket (docs/adr/0007-write-audit-publish.md, docs/adr/0008-writer-lease.md).
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from fixtures.aws_stack import StackNamespace, finished, ids_once, upload_landing
from fixtures.ingest_jobs import wait_for
from sluiceway.errors import ExitCode
from sluiceway.generate import generate_landing_file
from sluiceway.local_stack import LANDING_BUCKET
from sluiceway.statuses import COMPLETED, PUBLISHING

pytestmark = [pytest.mark.aws_stack, pytest.mark.reliability]

RECORDS = 400


@pytest.fixture
def landing(stack_namespace: StackNamespace, tmp_path: Path) -> tuple[str, int, str]:
    """A generated landing file in the landing bucket: its URI, accepted count, version."""
    path = tmp_path / "transactions_2026-11-25.csv"
    manifest = generate_landing_file(path, RECORDS, seed=5, defect_rate=0.02)
    source, version = upload_landing(
        stack_namespace.stack, path, f"{stack_namespace.name}/{path.name}"
    )
    return source, manifest.accepted, version


def test_an_ingest_killed_at_its_commit_point_is_published_once_by_the_rerun(
    stack_namespace: StackNamespace, landing: tuple[str, int, str]
) -> None:
    """SIGKILL right after the ledger says `publishing`: nothing is on `main` yet, the dead
    run's DynamoDB lease expires, and the re-run rolls the publication forward."""
    source, accepted, _version = landing
    killed = stack_namespace.start_ingest(
        source, "after_ledger_publishing", lease_expiry_seconds="8"
    )
    code, _output, errors = finished(killed)
    assert code == -signal.SIGKILL, errors[-3000:]
    (decided,) = stack_namespace.read_table("ingest_ledger").to_pylist()
    assert decided["status"] == PUBLISHING
    assert stack_namespace.read_table("transactions").num_rows == 0, "published before audit"
    assert stack_namespace.lease_item() is not None, "a killed holder cannot release its lease"

    rerun = stack_namespace.start_ingest(source, lease_wait_seconds="60")
    code, output, errors = finished(rerun)

    assert code == ExitCode.OK, errors[-3000:]
    assert "nothing changed" in output, output
    (ledger,) = stack_namespace.read_table("ingest_ledger").to_pylist()
    assert (ledger["status"], ledger["accepted"]) == (COMPLETED, accepted)
    assert len(ids_once(stack_namespace.read_table("transactions"))) == accepted
    assert stack_namespace.read_table("rejected_records").num_rows == RECORDS - accepted
    assert stack_namespace.lease_item() is None


def test_a_second_ingest_is_busy_and_a_zombie_that_lost_its_lease_commits_nothing(
    stack_namespace: StackNamespace, landing: tuple[str, int, str], tmp_path: Path
) -> None:
    """The first ingest pauses after staging, holding the lease: a second ingest of the same
    file exits BUSY at once, a third waits. The first one's lease then vanishes (as after
    its expiry), the third takes it and completes, and the first resumes as a zombie: fenced,
    exit LEASE_LOST."""
    source, accepted, _version = landing
    marker = tmp_path / "zombie-paused"
    zombie = stack_namespace.start_ingest(source, f"pause@after_staged@{marker}")
    jobs = [zombie]
    try:
        wait_for(marker, zombie)
        holder = stack_namespace.lease_item()
        assert holder is not None and holder["pid"]["N"] == str(zombie.pid)
        busy = stack_namespace.start_ingest(source)
        waiting = stack_namespace.start_ingest(source, lease_wait_seconds="300")
        jobs += [busy, waiting]

        code, _output, errors = finished(busy)
        assert code == ExitCode.BUSY, errors[-3000:]
        assert f"pid {zombie.pid}" in errors, errors[-3000:]
        assert waiting.poll() is None, finished(waiting)

        stack_namespace.delete_lease_item()
        code, output, errors = finished(waiting)
        assert code == ExitCode.OK, errors[-3000:]
        assert ": completed" in output, output

        marker.unlink()
        code, output, errors = finished(zombie)
    finally:
        for job in jobs:
            if job.poll() is None:
                job.kill()
    assert code == ExitCode.LEASE_LOST, (output, errors[-3000:])
    (ledger,) = stack_namespace.read_table("ingest_ledger").to_pylist()
    assert (ledger["status"], ledger["accepted"]) == (COMPLETED, accepted)
    assert len(ids_once(stack_namespace.read_table("transactions"))) == accepted
    assert stack_namespace.read_table("rejected_records").num_rows == RECORDS - accepted


def test_a_landing_object_overwritten_mid_run_is_read_at_the_version_pinned_at_the_start(
    stack_namespace: StackNamespace, landing: tuple[str, int, str], tmp_path: Path
) -> None:
    """SeaweedFS keeps object versions: the partner's resend lands while the ingest runs,
    after its driver scanned the file and before the tasks read their ranges."""
    source, accepted, version = landing
    key = source.removeprefix(f"s3://{LANDING_BUCKET}/")
    s3 = stack_namespace.stack.client("s3")
    original = s3.get_object(Bucket=LANDING_BUCKET, Key=key)["Body"].read()
    resent = tmp_path / "resent.csv"
    generate_landing_file(resent, 50, seed=6, first_id=10_000)
    marker = tmp_path / "ingest-paused"
    job = stack_namespace.start_ingest(source, f"pause@after_ledger_started@{marker}")
    try:
        wait_for(marker, job)
        newer = s3.put_object(Bucket=LANDING_BUCKET, Key=key, Body=resent.read_bytes())
        assert newer["VersionId"] != version
        marker.unlink()
        code, output, errors = finished(job)
    finally:
        if job.poll() is None:
            job.kill()

    assert code == ExitCode.OK, errors[-3000:]
    assert "manifest matched" in output, output
    (ledger,) = stack_namespace.read_table("ingest_ledger").to_pylist()
    assert ledger["source_version"] == version
    assert ledger["sha256"] == hashlib.sha256(original).hexdigest()
    assert len(ids_once(stack_namespace.read_table("transactions"))) == accepted
