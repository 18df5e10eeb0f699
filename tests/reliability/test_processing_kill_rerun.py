"""Kill the processing job halfway with SIGKILL, re-run it: every record ends exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from fixtures.processing_records import job_summary, process_job
from sluiceway.processing.reconcile import reconcile
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

pytestmark = pytest.mark.reliability

RECORDS = 300


def test_killed_run_resumes_with_only_the_missing_records_and_no_duplicates(
    spark, isolated_settings, seed, ledger_server
) -> None:
    settings = isolated_settings
    state = ledger_server.state
    state.faults = ("none",)
    state.latency_seconds = 0.1
    ingest_id = seed(spark, settings, RECORDS, name="kill.csv", every_no_rate=0)
    arguments = (
        "--ingest-id", ingest_id, "--handler", "http",
        "--handler-option", f"endpoint={ledger_server.url}",
        "--handler-option", "concurrency=1",
        "--batch-size", "20", "--commit-every", "100",
    )  # fmt: skip

    first = process_job(settings, *arguments)
    deadline = time.monotonic() + 240
    while len(state.effects) < 140 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, f"the job ended before the kill: {first.communicate()}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL

    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
    committed = spark.table(settings.table(PROCESSED_TRANSACTIONS)).count()
    # At least the first wave was committed before the kill, and not everything.
    assert 0 < committed < RECORDS

    second = process_job(settings, *arguments)
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr[-3000:]
    summary = job_summary(stdout)
    assert summary["pending"] == RECORDS - committed  # only what the killed run had not committed
    assert summary["reconciled"]

    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip
    # The killed run's uncommitted batches were sent again with the same keys: one effect each.
    assert len(state.effects) == RECORDS
    assert state.applied_once()
