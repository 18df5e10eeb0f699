"""Maintenance compacts small files without changing what queries return."""

from __future__ import annotations

import pytest

from sluiceway.maintenance import (
    MaintenanceOptions,
    data_file_count,
    maintain_tables,
    table_lock,
)
from sluiceway.query import run_query
from sluiceway.tables import ensure_tables

pytestmark = pytest.mark.integration


def _append_small_waves(spark, settings, waves: int) -> None:
    ensure_tables(spark, settings, ("processing_failures",))
    for wave in range(waves):
        spark.sql(
            f"INSERT INTO {settings.table('processing_failures')} VALUES "
            f"('t{wave}', 'ing_x', 'k{wave}', 'financial', 'Timeout', 'slow', {wave}, "
            f"'b{wave}', TIMESTAMP '2026-01-0{wave + 1} 00:00:00')"
        )


def test_maintenance_reduces_files_and_keeps_results(spark, isolated_settings) -> None:
    _append_small_waves(spark, isolated_settings, 5)
    sql = "SELECT transaction_id, attempts FROM processing_failures ORDER BY 1"
    expected = run_query(isolated_settings, sql)
    before = data_file_count(spark, isolated_settings, "processing_failures")

    results = maintain_tables(spark, isolated_settings, MaintenanceOptions(retain_last=1))

    after = data_file_count(spark, isolated_settings, "processing_failures")
    (result,) = [r for r in results if r.table == "processing_failures"]
    print(f"processing_failures data files: {before} -> {after}")
    assert (before, after) == (5, 1)
    assert (result.files_before, result.files_after) == (5, 1)
    assert result.rewritten_files == 5
    assert run_query(isolated_settings, sql).equals(expected)


def test_busy_table_is_skipped(spark, isolated_settings) -> None:
    _append_small_waves(spark, isolated_settings, 2)
    with table_lock(isolated_settings, "processing_failures"):
        (result,) = maintain_tables(spark, isolated_settings, tables=("processing_failures",))
    assert "locked by another process" in result.skipped
    assert data_file_count(spark, isolated_settings, "processing_failures") == 2
