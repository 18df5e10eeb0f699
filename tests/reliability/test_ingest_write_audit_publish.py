"""Write-audit-publish: readers of `main` never see an ingest before it is audited and published.

A real ingest process is paused after its files are written and staged in Iceberg but before
the audit publishes them; DuckDB (an independent reader of `main`) must see none of its rows,
although the files are on disk. After the pause the rows appear, all at once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fixtures.ingest_jobs import start_ingest, wait_for
from sluiceway.generate import generate_landing_file

pytestmark = pytest.mark.reliability


def test_readers_see_nothing_of_an_ingest_paused_between_write_and_publish(
    settings, tmp_path, duckdb_query
):
    target = dataclasses.replace(settings, namespace="write_audit_publish")
    landing = tmp_path / "day.csv"
    manifest = generate_landing_file(landing, 3000, seed=21, defect_rate=0.02)
    marker = tmp_path / "paused"
    job = start_ingest(target, landing, f"pause@after_staged@{marker}")
    wait_for(marker, job)

    written = list((Path(target.warehouse) / target.namespace / "transactions").rglob("*.parquet"))
    assert written, "the paused ingest has written its data files"
    assert duckdb_query(target, "SELECT COUNT(*) FROM transactions") == [(0,)]
    assert duckdb_query(target, "SELECT COUNT(*) FROM rejected_records") == [(0,)]
    assert duckdb_query(target, "SELECT status FROM ingest_ledger") == [("started",)]

    marker.unlink()
    output, errors = job.communicate(timeout=300)
    assert job.returncode == 0, (output, errors)
    assert duckdb_query(target, "SELECT COUNT(*) FROM transactions") == [(manifest.accepted,)]
    ((status, lines),) = duckdb_query(target, "SELECT status, lines_read FROM ingest_ledger")
    assert (status, lines) == ("completed", json.loads(manifest_path_text(landing))["lines"])


def manifest_path_text(landing: Path) -> str:
    return Path(f"{landing}.manifest.json").read_text()
