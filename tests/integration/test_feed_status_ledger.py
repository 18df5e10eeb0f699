"""`sluiceway status` over a real ledger: a file ingested by Spark, read back without Spark.

The clock is frozen relative to the ingest's own `finished_at` (read independently through
Spark), so the verdicts do not depend on when the test runs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fixtures.landing import write_landing
from sluiceway.arrival import as_utc
from sluiceway.cli import main
from sluiceway.errors import ExitCode
from sluiceway.ingest import ingest_file
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED, FAILED
from sluiceway.tables import INGEST_LEDGER

pytestmark = pytest.mark.integration


def status(
    settings: Settings, now: datetime, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict]:
    code = main(
        [
            "status",
            "--warehouse", settings.warehouse,
            "--namespace", settings.namespace,
            "--now", now.isoformat(),
            "--json",
        ]
    )  # fmt: skip
    [feed] = json.loads(capsys.readouterr().out)["feeds"]
    return code, feed


def test_status_reads_the_last_completed_file_from_the_ledger(
    spark, isolated_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = write_landing(tmp_path / "partner_2026-12-06.csv", range(20))
    assert ingest_file(spark, isolated_settings, str(landing)).status == COMPLETED
    [row] = (
        spark.table(isolated_settings.table(INGEST_LEDGER))
        .where(f"status = '{COMPLETED}'")
        .collect()
    )
    finished = as_utc(row.finished_at)
    next_day = finished.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)

    code, feed = status(isolated_settings, finished + timedelta(seconds=1), capsys)
    assert (code, feed["state"], feed["last_file"]) == (0, "ok", row.source_file)
    assert datetime.fromisoformat(feed["completed_at"]) == finished
    assert feed["namespace"] == isolated_settings.namespace

    code, feed = status(isolated_settings, next_day + timedelta(hours=5), capsys)
    assert (code, feed["state"]) == (0, "waiting")
    code, feed = status(isolated_settings, next_day + timedelta(hours=7), capsys)
    assert (code, feed["state"], feed["late_since"]) == (
        ExitCode.FEED_LATE,
        "late",
        (next_day + timedelta(hours=6)).isoformat(),
    )
    assert feed["age_seconds"] == int((next_day + timedelta(hours=7) - finished).total_seconds())

    # A later ingest that failed reconciliation is no arrival: still late, same last file.
    failed_at = next_day + timedelta(hours=6, minutes=30)
    ledger = spark.table(isolated_settings.table(INGEST_LEDGER))
    failed = {**row.asDict(), "ingest_id": "ing_failed", "source_file": "late.csv"}
    failed.update(status=FAILED, finished_at=failed_at)
    spark.createDataFrame([failed], ledger.schema).writeTo(
        isolated_settings.table(INGEST_LEDGER)
    ).append()
    code, feed = status(isolated_settings, next_day + timedelta(hours=7), capsys)
    assert (code, feed["state"], feed["last_file"]) == (ExitCode.FEED_LATE, "late", row.source_file)
    human = main(
        [
            "status",
            "--warehouse", isolated_settings.warehouse,
            "--namespace", isolated_settings.namespace,
            "--now", (next_day + timedelta(hours=7)).isoformat(),
        ]
    )  # fmt: skip
    assert human == ExitCode.FEED_LATE
    line = capsys.readouterr().out.splitlines()[1]
    assert row.source_file in line and "late since" in line
