"""A zombie processing run: paused between its wave's files and their commit while its lease
is taken, it must not register its outcomes on top of the run that took over.

Real processes: the first `process_records` pauses at `process_after_wave_written` (its
outcome files are on disk, not yet appended); the lease file is removed, as an expired
DynamoDB lease looks to the next writer; a second run processes every record; the first then
resumes and must exit 6 (LEASE_LOST) without appending. DuckDB reads the outcome tables.
"""

from __future__ import annotations

import pytest

from fixtures.ingest_jobs import wait_for
from fixtures.processing_records import job_summary, process_job
from sluiceway.errors import ExitCode
from sluiceway.lease import lease_file

pytestmark = pytest.mark.reliability

RECORDS = 200


def test_a_zombie_processing_run_is_fenced_and_each_record_has_one_outcome(
    spark, isolated_settings, seed, tmp_path, duckdb_query
) -> None:
    settings = isolated_settings
    ingest_id = seed(spark, settings, RECORDS, name="zombie.csv", every_no_rate=0)
    marker = tmp_path / "paused"
    zombie = process_job(
        settings, "--ingest-id", ingest_id,
        failpoint=f"pause@process_after_wave_written@{marker}",
    )  # fmt: skip
    wait_for(marker, zombie, limit=600)
    lease_file(settings).unlink()  # the zombie's lease expired while it was paused

    successor = process_job(settings, "--ingest-id", ingest_id)
    output, errors = successor.communicate(timeout=600)
    assert successor.returncode == ExitCode.OK, errors[-3000:]
    assert job_summary(output)["reconciled"]

    marker.unlink()
    output, errors = zombie.communicate(timeout=600)
    assert zombie.returncode == ExitCode.LEASE_LOST, (output[-2000:], errors[-3000:])
    assert "is no longer this run's" in errors

    (outcomes,) = duckdb_query(
        settings,
        "SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM ("
        " SELECT transaction_id FROM processed_transactions UNION ALL"
        " SELECT transaction_id FROM processing_failures)",
    )
    assert outcomes == (RECORDS, RECORDS)
