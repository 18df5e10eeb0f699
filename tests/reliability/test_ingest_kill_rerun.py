"""Kill the ingest job for real at every commit boundary, re-run, and compare with one clean run."""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fixtures.ingest_jobs import start_ingest
from sluiceway.ingest import ingest_file
from sluiceway.settings import Settings
from sluiceway.tables import INGEST_LEDGER, REJECTED_RECORDS, TRANSACTIONS

pytestmark = pytest.mark.reliability

FAILPOINTS = (
    "after_ledger_started",
    "after_staged",
    "after_ledger_publishing",
    "after_transactions_commit",
    "after_rejected_commit",
    "after_ledger_completed",
)


def table_state(spark, settings: Settings) -> dict:
    """Everything a clean run determines; timings, run ids and snapshot ids excluded."""
    volatile = ("ingested_at",)
    return {
        TRANSACTIONS: spark.table(settings.table(TRANSACTIONS))
        .drop(*volatile)
        # Maps cannot be sorted or hashed: compare them as sorted entry arrays.
        .withColumn("_rescued", F.array_sort(F.map_entries("_rescued"))),
        REJECTED_RECORDS: spark.table(settings.table(REJECTED_RECORDS)).drop(*volatile),
        INGEST_LEDGER: spark.table(settings.table(INGEST_LEDGER)).select(
            "ingest_id",
            "sha256",
            "status",
            "lines_read",
            "accepted",
            "rejected",
            # Maps cannot be sorted or hashed: compare them as sorted entry arrays.
            F.array_sort(F.map_entries("rejected_by_reason")).alias("rejected_by_reason"),
            F.array_sort(F.map_entries("accepted_amount_by_currency")).alias("amounts"),
        ),
    }


def assert_same_tables(spark, actual: Settings, expected: Settings) -> None:
    got, want = table_state(spark, actual), table_state(spark, expected)
    for name in want:
        assert_df_equality(got[name], want[name], ignore_row_order=True, ignore_nullable=True)


@pytest.fixture(scope="module")
def clean_run(spark, settings, landing_with_defects) -> Settings:
    """The reference: one uninterrupted ingest of the file."""
    reference = dataclasses.replace(settings, namespace="kill_reference")
    result = ingest_file(spark, reference, str(landing_with_defects[0]))
    assert result.status == "completed", result.message
    return reference


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_job_killed_at_a_commit_boundary_then_rerun_equals_a_clean_run(
    spark, settings, landing_with_defects, clean_run, failpoint
):
    landing = landing_with_defects[0]
    target = dataclasses.replace(settings, namespace=f"kill_{failpoint}")
    job = start_ingest(target, landing, failpoint)
    output, errors = job.communicate(timeout=600)
    assert job.returncode == -signal.SIGKILL, (output, errors)
    rerun = ingest_file(spark, target, str(landing))
    # Killed after the commit point (`publishing`): the re-run first finishes that
    # publication, then finds the file completed. Before it: nothing was published.
    decided = FAILPOINTS.index(failpoint) >= FAILPOINTS.index("after_ledger_publishing")
    assert rerun.status == ("skipped" if decided else "completed"), rerun.message
    assert_same_tables(spark, target, clean_run)


def test_job_killed_mid_write_then_rerun_equals_a_clean_run(
    spark, settings, landing_with_defects, clean_run
):
    landing = landing_with_defects[0]
    target = dataclasses.replace(settings, namespace="kill_mid_write")
    job = start_ingest(target, landing)
    ledger_dir = Path(settings.warehouse) / target.namespace / INGEST_LEDGER / "data"
    deadline = time.monotonic() + 300
    # The ledger's `started` row is written before any data: kill right after it appears.
    while not ledger_dir.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)
    rerun = ingest_file(spark, target, str(landing))
    assert rerun.status == "completed", rerun.message
    assert_same_tables(spark, target, clean_run)
