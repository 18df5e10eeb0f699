"""Maintenance compacts small files without changing what queries return."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError, ExitCode
from sluiceway.lease import WriterBusyError, writer_lease
from sluiceway.maintenance import MaintenanceOptions, data_file_count, maintain_tables
from sluiceway.query_duckdb import run_query
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


def test_maintenance_during_a_write_changes_nothing_and_is_busy(spark, isolated_settings) -> None:
    _append_small_waves(spark, isolated_settings, 2)
    with writer_lease(isolated_settings, "ingest"), pytest.raises(WriterBusyError) as busy:
        maintain_tables(spark, isolated_settings, MaintenanceOptions(retain_last=1))
    assert busy.value.exit_code == ExitCode.BUSY
    assert "is being written by ingest (pid" in str(busy.value)
    assert data_file_count(spark, isolated_settings, "processing_failures") == 2


def test_a_named_table_that_does_not_exist_is_one_clear_error(spark, isolated_settings) -> None:
    _append_small_waves(spark, isolated_settings, 1)
    with pytest.raises(ConfigurationError, match="table transactions does not exist in"):
        maintain_tables(spark, isolated_settings, tables=("transactions",))


def test_orphans_of_killed_task_attempts_are_removed_once_old(spark, isolated_settings) -> None:
    """A killed task attempt leaves its Parquet file unregistered (docs/adr/0005): maintenance
    removes it once older than --orphan-age-days, and leaves a younger one (it may belong to a
    write still running) and every registered file alone."""
    _append_small_waves(spark, isolated_settings, 2)
    sql = "SELECT transaction_id, attempts FROM processing_failures ORDER BY 1"
    expected = run_query(isolated_settings, sql)
    data = (
        Path(isolated_settings.warehouse) / isolated_settings.namespace / "processing_failures"
    ) / "data"
    registered = next(data.rglob("*.parquet"))
    old_orphan = data / "000-deadbeef-p00000.parquet"
    young_orphan = data / "000-cafef00d-p00001.parquet"
    for orphan in (old_orphan, young_orphan):
        shutil.copy(registered, orphan)
    five_days_ago = time.time() - 5 * 86_400
    os.utime(old_orphan, (five_days_ago, five_days_ago))

    results = maintain_tables(
        spark, isolated_settings, MaintenanceOptions(), ("processing_failures",)
    )

    (result,) = results
    assert result.orphans_removed == 1
    assert not old_orphan.exists() and young_orphan.exists()
    assert run_query(isolated_settings, sql).equals(expected)
