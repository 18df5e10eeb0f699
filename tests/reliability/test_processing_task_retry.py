"""Spark task retries (`local[2,3]`): a task that dies after sending a batch leaves no duplicates.

The job runs in a subprocess so the shared `local[2]` session is untouched; the handler below
is loaded there by `module:attribute` from this file (PYTHONPATH points at tests/).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fixtures.processing_records import job_summary, process_job
from sluiceway.processing.http_endpoint import HttpHandler
from sluiceway.processing.outcomes import AFTER_TASK_FILES_WRITTEN
from sluiceway.processing.reconcile import reconcile
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES, ensure_tables

pytestmark = pytest.mark.reliability

RECORDS = 200
HERE = Path(__file__).parent


class TaskLost(BaseException):
    """Not an Exception: the engine does not catch it, so the whole Spark task fails."""


class CrashOnFirstAttempt(HttpHandler):
    """Sends each batch, then fails the first attempt of even partitions after their first batch."""

    def handle(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from pyspark import TaskContext

        results = super().handle(records)
        context = TaskContext.get()
        if context.attemptNumber() == 0 and context.partitionId() % 2 == 0:
            raise TaskLost(f"simulated lost task {context.partitionId()}")
        return results


def test_retried_spark_tasks_leave_one_result_and_one_effect_per_record(
    spark, isolated_settings, seed, ledger_server
) -> None:
    settings = isolated_settings
    state = ledger_server.state
    state.faults = ("none",)
    ingest_id = seed(spark, settings, RECORDS, name="retry.csv", every_no_rate=0)

    job = process_job(
        settings,
        "--ingest-id", ingest_id,
        "--handler", f"{Path(__file__).stem}:CrashOnFirstAttempt",
        "--handler-option", f"endpoint={ledger_server.url}",
        "--handler-option", "concurrency=1",
        "--batch-size", "20", "--partitions", "2",
        python_path=os.pathsep.join([str(HERE), str(HERE.parent)]),
        master="local[2,3]",
    )  # fmt: skip
    stdout, stderr = job.communicate(timeout=300)

    assert job.returncode == 0, stderr[-3000:]
    assert "TaskLost" in stderr  # the task really failed and Spark ran it again
    resent = [key for key, count in state.batches_seen.items() if count > 1]
    assert resent, "no batch was sent twice: the task was not retried"
    assert job_summary(stdout)["reconciled"]
    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip
    assert len(state.effects) == RECORDS and state.applied_once()


def test_files_of_a_failed_task_attempt_are_never_registered(
    spark, isolated_settings, seed
) -> None:
    """Every task's first attempt is killed once its outcome file is written; Spark runs it
    again. The killed attempts' files stay orphans: the table holds each record once."""
    settings = isolated_settings
    ingest_id = seed(spark, settings, RECORDS, name="orphan.csv", every_no_rate=0)
    ensure_tables(spark, settings, (PROCESSED_TRANSACTIONS,))
    data = Path(settings.warehouse) / settings.namespace / PROCESSED_TRANSACTIONS / "data"

    job = process_job(
        settings, "--ingest-id", ingest_id, "--partitions", "2",
        master="local[2,3]", failpoint=AFTER_TASK_FILES_WRITTEN,
    )  # fmt: skip
    stdout, stderr = job.communicate(timeout=300)

    assert job.returncode == 0, stderr[-3000:]
    assert "Python worker exited unexpectedly" in stderr, stderr[-3000:]
    spark.sql(f"REFRESH TABLE {settings.table(PROCESSED_TRANSACTIONS)}")
    files = spark.sql(f"SELECT file_path FROM {settings.table(PROCESSED_TRANSACTIONS)}.files")
    registered = {Path(row.file_path).name for row in files.collect()}
    on_disk = {path.name for path in data.rglob("*.parquet")}
    orphans = on_disk - registered
    assert len(orphans) == 2 and len(registered) == 2, (on_disk, registered)
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip
    assert job_summary(stdout)["reconciled"]
