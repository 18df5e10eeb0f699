"""Zombie writers and crashes between publishes, in real processes, read back with DuckDB.

A zombie is an ingest paused (a `pause@` failpoint) while its lease is taken from it: its lease
file is removed, which is what an expired DynamoDB lease looks like to the next writer. The
next writer runs to the end; then the zombie resumes and must stop before its next commit
with its own exit code (6), leaving every record once. A crash after an ingest's commit
point (the ledger's `publishing`) is rolled forward by the next writer before that writer
checks anything, so another file's shared ids are `already_ingested`, never doubled.
"""

from __future__ import annotations

import dataclasses
import signal

import pytest

from fixtures.ingest_jobs import start_ingest, wait_for
from fixtures.landing import write_landing
from sluiceway.errors import ExitCode
from sluiceway.lease import lease_file
from sluiceway.settings import Settings

pytestmark = pytest.mark.reliability


def finish(job, expected: int) -> str:
    output, errors = job.communicate(timeout=600)
    assert job.returncode == expected, (output, errors[-3000:])
    return errors


def ids_once(duckdb_query, settings: Settings) -> tuple[int, int]:
    """(rows, distinct transaction ids) of transactions, as DuckDB reads `main`."""
    ((rows, distinct),) = duckdb_query(
        settings, "SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM transactions"
    )
    return rows, distinct


def ledger(duckdb_query, settings: Settings) -> dict[str, str]:
    return dict(duckdb_query(settings, "SELECT source_file, status FROM ingest_ledger"))


def test_a_zombie_ingest_of_the_same_file_is_fenced_and_records_stay_once(
    settings, tmp_path, duckdb_query
):
    target = dataclasses.replace(settings, namespace="zombie_same_file")
    landing = write_landing(tmp_path / "day.csv", range(300))
    marker = tmp_path / "paused"
    zombie = start_ingest(target, landing, f"pause@after_staged@{marker}")
    wait_for(marker, zombie)
    lease_file(target).unlink()  # the lease expired while the zombie was paused

    finish(start_ingest(target, landing), ExitCode.OK)
    marker.unlink()
    errors = finish(zombie, ExitCode.LEASE_LOST)

    assert "is no longer this run's" in errors
    assert ids_once(duckdb_query, target) == (300, 300)
    assert list(ledger(duckdb_query, target).values()) == ["completed"]


def test_a_zombie_ingest_sharing_ids_with_another_file_is_fenced_and_its_rerun_rejects_them(
    settings, tmp_path, duckdb_query
):
    target = dataclasses.replace(settings, namespace="zombie_two_files")
    first = write_landing(tmp_path / "a.csv", range(300))
    second = write_landing(tmp_path / "b.csv", range(100, 300), rejects=0)
    marker = tmp_path / "paused"
    zombie = start_ingest(target, first, f"pause@after_staged@{marker}")
    wait_for(marker, zombie)
    lease_file(target).unlink()

    finish(start_ingest(target, second), ExitCode.OK)
    marker.unlink()
    finish(zombie, ExitCode.LEASE_LOST)
    assert ids_once(duckdb_query, target) == (200, 200), "only the second file is on main"

    finish(start_ingest(target, first), ExitCode.OK)
    assert ids_once(duckdb_query, target) == (300, 300)
    (already,) = duckdb_query(
        target,
        "SELECT COUNT(*) FROM rejected_records WHERE list_contains(reasons, 'already_ingested')",
    )
    assert already == (200,)
    assert set(ledger(duckdb_query, target).values()) == {"completed"}


@pytest.mark.parametrize(
    "failpoint", ["after_ledger_publishing", "after_transactions_commit", "after_rejected_commit"]
)
def test_a_crash_between_publishes_is_finished_by_the_next_writer_before_it_checks_ids(
    settings, tmp_path, duckdb_query, failpoint
):
    target = dataclasses.replace(settings, namespace=f"crash_{failpoint}")
    first = write_landing(tmp_path / "a.csv", range(260), rejects=40)
    second = write_landing(tmp_path / "b.csv", range(175, 345))  # 85 ids shared with a.csv
    finish(start_ingest(target, first, failpoint), -signal.SIGKILL)
    assert ledger(duckdb_query, target) == {str(first.resolve()): "publishing"}

    finish(start_ingest(target, second), ExitCode.OK)
    assert ledger(duckdb_query, target) == {
        str(first.resolve()): "completed",
        str(second.resolve()): "completed",
    }
    assert ids_once(duckdb_query, target) == (345, 345)
    reasons = dict(
        duckdb_query(
            target,
            "SELECT source_file, COUNT(*) FROM rejected_records GROUP BY source_file",
        )
    )
    assert reasons == {str(first.resolve()): 40, str(second.resolve()): 85}

    rerun = finish(start_ingest(target, first), ExitCode.OK)
    assert "already ingested" in rerun
    assert ids_once(duckdb_query, target) == (345, 345)
