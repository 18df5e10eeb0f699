"""The chunks' tasks read their chunk from a JVM range, not from rows sent by Python.

A Python RDD of chunk rows ran a second Python worker in every task (to turn the rows into
Spark's) and started a second worker daemon before the first tasks (0.5 s, measured).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sluiceway.generate import generate_landing_file
from sluiceway.iceberg_files import write_target
from sluiceway.ingest.landing import LandingChunk, scan_landing_file
from sluiceway.ingest.stage import chunk_tasks
from sluiceway.ingest.table_rows import Lineage
from sluiceway.ingest.write import ChunkPlan
from sluiceway.tables import INGEST_TABLES, REJECTED_RECORDS, TRANSACTIONS, ensure_tables

pytestmark = pytest.mark.integration


def test_each_chunk_is_one_task_fed_by_a_range_of_positions(
    spark, isolated_settings, tmp_path: Path
) -> None:
    landing_file = tmp_path / "landing.csv"
    manifest = generate_landing_file(landing_file, 12_000, seed=23, defect_rate=0.02)
    scan = scan_landing_file(
        str(landing_file),
        256 << 10,
        isolated_settings.staging_location(),
        isolated_settings.max_record_bytes,
    )
    assert len(scan.chunks) >= 3
    ensure_tables(spark, isolated_settings, INGEST_TABLES)
    plan = ChunkPlan(
        lineage=Lineage(str(landing_file), "ing_chunk_tasks", datetime.now(UTC)),
        transactions=write_target(spark, isolated_settings, TRANSACTIONS),
        rejected=write_target(spark, isolated_settings, REJECTED_RECORDS),
        max_record_bytes=isolated_settings.max_record_bytes,
        ids_location=str(tmp_path / "ids"),
    )
    # Indexes as a later round has them: not starting at 0.
    chunks: list[tuple[int, LandingChunk]] = [
        (10 + number, chunk) for number, chunk in enumerate(scan.chunks)
    ]
    tasks = chunk_tasks(spark, plan, chunks)
    executed = tasks._jdf.queryExecution().executedPlan().toString()
    assert "Range (0, " in executed, executed
    assert "ExistingRDD" not in executed and "PythonRDD" not in executed, executed
    assert tasks.rdd.getNumPartitions() == len(chunks)

    rows = tasks.collect()
    files = [json.loads(row.file) for row in rows if row.file]
    assert sorted({row.chunk for row in rows}) == [index for index, _ in chunks]
    records = sum(f["records"] for f in files if f["table"] in (TRANSACTIONS, REJECTED_RECORDS))
    assert records == manifest.records
    id_pairs = sum(f["records"] for f in files if f["table"] == "ids")
    assert id_pairs <= manifest.records
    assert len([f for f in files if f["table"] == "ids"]) == len(chunks)
