"""SIGKILL at every point of a wave's commit, re-run after each: every record exactly once.

A wave's tasks write its outcome files, then the driver commits its results and its dead
letters (two Iceberg appends). The job is killed for real (lib/sluiceway/failpoints.py) after
the files are written, between the two commits and after both; each next run must finish what the
killed one left, and at no point may a record have both a result and a dead letter, or two
of either.
"""

from __future__ import annotations

import signal

import pytest

from fixtures.processing_records import job_summary, process_job
from sluiceway.processing.commit import (
    AFTER_FAILURES_COMMIT,
    AFTER_RESULTS_COMMIT,
    AFTER_WAVE_WRITTEN,
)
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

pytestmark = pytest.mark.reliability

RECORDS = 100
DEAD = 10  # every_no_rate=10: records 7, 17, ... have a currency without an FX rate


def outcomes(spark, settings) -> tuple[list[str], list[str]]:
    """Transaction ids in processed_transactions and in processing_failures, as committed."""
    found = []
    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
        rows = spark.table(settings.table(table)).select("transaction_id").collect()
        found.append([row.transaction_id for row in rows])
    return found[0], found[1]


def assert_each_record_at_most_once(results: list[str], dead: list[str]) -> None:
    assert len(results) == len(set(results)), "a record has two results"
    assert len(dead) == len(set(dead)), "a record has two dead letters"
    assert not set(results) & set(dead), "a record has a result and a dead letter"


def test_kills_at_every_commit_point_leave_each_record_exactly_once(
    spark, isolated_settings, seed
) -> None:
    settings = isolated_settings
    ingest_id = seed(spark, settings, RECORDS, name="commit-kills.csv", every_no_rate=10)
    arguments = ("--ingest-id", ingest_id, "--batch-size", "10")
    # What each killed run has committed when it dies: (results, dead letters).
    expected = {
        AFTER_WAVE_WRITTEN: (0, 0),
        AFTER_RESULTS_COMMIT: (RECORDS - DEAD, 0),
        # This run only had the 10 dead letters left to do (its predecessor committed the rest).
        AFTER_FAILURES_COMMIT: (RECORDS - DEAD, DEAD),
    }

    for failpoint, (committed_results, committed_dead) in expected.items():
        job = process_job(settings, *arguments, failpoint=failpoint)
        _stdout, stderr = job.communicate(timeout=300)
        assert job.returncode == -signal.SIGKILL, f"{failpoint}: {stderr[-3000:]}"
        results, dead = outcomes(spark, settings)
        assert_each_record_at_most_once(results, dead)
        assert (len(results), len(dead)) == (committed_results, committed_dead), failpoint

    job = process_job(settings, *arguments)
    stdout, stderr = job.communicate(timeout=300)

    assert job.returncode == 0, stderr[-3000:]
    summary = job_summary(stdout)
    assert summary["pending"] == 0  # the last killed run had already committed everything
    assert summary["reconciled"]
    [check] = summary["reconciliation"]
    assert (check["accepted"], check["processed"], check["failed"], check["duplicates"]) == (
        RECORDS, RECORDS - DEAD, DEAD, 0,
    )  # fmt: skip
    results, dead = outcomes(spark, settings)
    assert_each_record_at_most_once(results, dead)
    assert set(results) | set(dead) == {f"TX{i:08d}" for i in range(RECORDS)}
    assert set(dead) == {f"TX{i:08d}" for i in range(7, RECORDS, 10)}
