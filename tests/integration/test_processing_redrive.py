"""`sluiceway redrive`: dead letters back to pending, once; the next process run takes them."""

from __future__ import annotations

import pytest

from fixtures.processing_records import NO_RATE_CURRENCY
from sluiceway.cli import main
from sluiceway.processing.financial import FX_RATE_MISSING
from sluiceway.processing.reconcile import reconcile
from sluiceway.tables import FX_RATES, PROCESSING_FAILURES, current_snapshot_id

pytestmark = pytest.mark.integration

RECORDS = 60
DEAD = 6  # every_no_rate=10


def test_redrive_puts_dead_letters_back_once_and_process_then_finishes_them(
    spark, isolated_settings, seed, monkeypatch, capsys
) -> None:
    settings = isolated_settings
    monkeypatch.setenv("SLUICEWAY_NAMESPACE", settings.namespace)
    monkeypatch.setenv("SLUICEWAY_SPARK_MASTER", settings.spark_master)
    monkeypatch.setenv("SLUICEWAY_SHUFFLE_PARTITIONS", str(settings.shuffle_partitions))
    ingest_id = seed(spark, settings, RECORDS, name="redrive.csv", every_no_rate=10)
    common = ["--warehouse", settings.warehouse]
    assert main(["process", "--ingest-id", ingest_id, "--batch-size", "20", *common]) == 0
    failures = settings.table(PROCESSING_FAILURES)
    assert spark.table(failures).count() == DEAD
    capsys.readouterr()

    # Another error class matches nothing and changes nothing.
    assert main(["redrive", "--error-class", "SomethingElse", *common]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert spark.table(failures).count() == DEAD

    # The missing rate arrives; the dead letters of that class go back to pending.
    spark.sql(
        f"INSERT INTO {settings.table(FX_RATES)} VALUES "
        f"(DATE'2026-01-01', '{NO_RATE_CURRENCY}', 'EUR', 0.0015, 'test')"
    )
    redrive = ["redrive", "--ingest-id", ingest_id, "--error-class", FX_RATE_MISSING, *common]
    assert main(redrive) == 0
    assert f"redrive: {DEAD} dead letters put back to pending ({ingest_id})" in (
        capsys.readouterr().out
    )
    spark.sql(f"REFRESH TABLE {failures}")
    assert spark.table(failures).count() == 0
    snapshot = current_snapshot_id(spark, settings, PROCESSING_FAILURES)

    # Twice is once: nothing to delete, no new snapshot.
    assert main(redrive) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert current_snapshot_id(spark, settings, PROCESSING_FAILURES) == snapshot

    assert main(["process", "--ingest-id", ingest_id, *common]) == 0
    out = capsys.readouterr().out
    assert f"{DEAD} records pending" in out and ": reconciled" in out
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip


def test_redrive_refuses_a_filter_that_is_not_an_identifier(capsys) -> None:
    assert main(["redrive", "--error-class", "x' OR '1'='1"]) == 2
    assert "only letters, digits" in capsys.readouterr().err
