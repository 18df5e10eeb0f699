"""Overlapping ingests in real processes: one writer at a time, nothing deleted, nothing doubled.

The first run is paused for real inside its write (a `pause@` failpoint) while a second run of
the same file, or of another file, starts: the second must exit busy (4) with one line and
touch nothing; the first then completes and the tables hold every record exactly once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fixtures.ingest_jobs import start_ingest, wait_for
from sluiceway.errors import ExitCode
from sluiceway.generate import generate_landing_file
from sluiceway.tables import INGEST_LEDGER, TRANSACTIONS

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("overlap")
    first, second = folder / "day-1.csv", folder / "day-2.csv"
    generate_landing_file(first, 2000, seed=11, defect_rate=0.02)
    generate_landing_file(second, 2000, seed=12, defect_rate=0.02)
    return first, second


def test_other_ingests_during_a_running_one_exit_busy_and_delete_nothing(
    spark, settings, tmp_path, two_days
):
    target = dataclasses.replace(settings, namespace="overlapping_ingests")
    first_file, other_file = two_days
    marker = tmp_path / "paused"
    first = start_ingest(target, first_file, f"pause@after_transactions_commit@{marker}")
    wait_for(marker, first)

    # The same file again (an impatient operator, a redrive) and another file, both at once.
    others = [start_ingest(target, first_file), start_ingest(target, other_file)]
    for other in others:
        output, errors = other.communicate(timeout=300)
        assert other.returncode == ExitCode.BUSY, (output, errors)
        busy = [line for line in errors.splitlines() if line.startswith("ingest_landing: error")]
        assert len(busy) == 1, errors
        assert "is being written by ingest (pid" in busy[0]
        assert "Traceback" not in errors

    marker.unlink()
    output, errors = first.communicate(timeout=300)
    assert first.returncode == 0, (output, errors)

    transactions = spark.table(target.table(TRANSACTIONS))
    accepted = json.loads(Path(f"{first_file}.manifest.json").read_text())["accepted"]
    assert transactions.count() == transactions.select("transaction_id").distinct().count()
    assert transactions.count() == accepted
    ledger = spark.table(target.table(INGEST_LEDGER)).collect()
    assert [(row.status, row.accepted) for row in ledger] == [("completed", accepted)]
