"""`sluiceway run FILE` on a generated file: ingest, then process, counts reconciled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sluiceway.cli import main
from sluiceway.generate import generate_landing_file
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

pytestmark = pytest.mark.integration


def test_run_ingests_then_processes_and_reconciles(
    spark: SparkSession,
    isolated_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = isolated_settings
    # The CLI builds its session from the environment; these match the shared test session,
    # so getOrCreate hands it the same one with the same runtime settings.
    monkeypatch.setenv("SLUICEWAY_NAMESPACE", settings.namespace)
    monkeypatch.setenv("SLUICEWAY_SPARK_MASTER", settings.spark_master)
    monkeypatch.setenv("SLUICEWAY_SHUFFLE_PARTITIONS", str(settings.shuffle_partitions))
    monkeypatch.setenv("SLUICEWAY_PARSE_CHUNK_MB", str(settings.parse_chunk_mb))
    landing = tmp_path / "partner-2026-11-25.csv"
    manifest = generate_landing_file(landing, 1_500, seed=3, defect_rate=0.02)

    code = main(["run", str(landing), "--warehouse", settings.warehouse, "--batch-size", "100"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert ": reconciled" in out
    processed = spark.table(settings.table(PROCESSED_TRANSACTIONS)).count()
    failed = spark.table(settings.table(PROCESSING_FAILURES)).count()
    assert processed + failed == manifest.accepted
    assert f"processed {processed:,} + failed {failed:,}" in out


def test_process_rejects_a_malformed_handler_option_before_starting_spark(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["process", "--handler", "http", "--handler-option", "endpoint"])
    assert code == 2
    assert "is not key=value" in capsys.readouterr().err
