"""Velocity counts are per record (ingest id, transaction id), over completed ingests only.

A transaction id may recur in another ingest more than `duplicate_lookback_days` apart. When
both ingests fall inside one run's counting window, a join on the id alone gave the record
one count row per ingest, and its result was written twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import functions as F

from sluiceway import contract
from sluiceway.ingest.run import ingest_file
from sluiceway.processing import process_records
from sluiceway.processing.financial import RECENT_COUNT, FinancialRules, with_recent_counts
from sluiceway.statuses import COMPLETED, STARTED
from sluiceway.tables import (
    DEFINITIONS,
    INGEST_LEDGER,
    PROCESSED_TRANSACTIONS,
    TRANSACTIONS,
    ensure_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

pytestmark = pytest.mark.integration

ACCOUNT = "DE89000000000000000001"
NOV_1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NOV_1_LATER = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _schema(name: str) -> str:
    return ", ".join(f"{column} {kind}" for column, kind in DEFINITIONS[name].columns)


def write_ingest(
    spark: SparkSession,
    settings: Settings,
    ingest_id: str,
    status: str,
    records: list[tuple[str, datetime]],
) -> None:
    """An ingest's rows in `transactions` (one account) and its ledger row with `status`."""
    rows = []
    for transaction_id, event_time in records:
        row: dict[str, Any] = {
            "transaction_id": transaction_id, "account_id": ACCOUNT, "amount": Decimal("1.00"),
            "currency": "EUR", "event_time": event_time, "status": "settled",
            "channel": "card_present", "country": "DE", "ingest_id": ingest_id,
            "source_file": f"/landing/{ingest_id}.csv",
        }  # fmt: skip
        rows.append(tuple(row.get(column) for column, _ in DEFINITIONS[TRANSACTIONS].columns))
    spark.createDataFrame(rows, _schema(TRANSACTIONS)).writeTo(
        settings.table(TRANSACTIONS)
    ).append()
    ledger = {column: None for column, _ in DEFINITIONS[INGEST_LEDGER].columns}
    ledger.update(ingest_id=ingest_id, source_file=f"/landing/{ingest_id}.csv", status=status)
    spark.createDataFrame([tuple(ledger.values())], _schema(INGEST_LEDGER)).writeTo(
        settings.table(INGEST_LEDGER)
    ).append()


def counts_of_ingest(spark: SparkSession, settings: Settings, ingest_id: str) -> list[tuple]:
    records = spark.table(settings.table(TRANSACTIONS)).filter(F.col("ingest_id") == ingest_id)
    counted = with_recent_counts(records, settings, FinancialRules())
    rows = counted.select("ingest_id", "transaction_id", RECENT_COUNT).collect()
    return sorted(tuple(row) for row in rows)


def test_a_transaction_id_in_two_ingests_gets_one_count_per_record(
    spark: SparkSession, isolated_settings: Settings
) -> None:
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS, INGEST_LEDGER))
    write_ingest(spark, settings, "ing_b", COMPLETED, [("X", NOV_1_LATER), ("T1", NOV_20)])
    write_ingest(spark, settings, "ing_a", COMPLETED, [("T1", NOV_1)])

    # B's window spans Nov 1 to Nov 20, so it reads A's T1 too; each record still gets one
    # row: X counts A's T1 half an hour before it and itself, B's T1 counts only itself.
    assert counts_of_ingest(spark, settings, "ing_b") == [("ing_b", "T1", 1), ("ing_b", "X", 2)]


def test_rows_of_an_unfinished_ingest_are_not_counted(
    spark: SparkSession, isolated_settings: Settings
) -> None:
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS, INGEST_LEDGER))
    write_ingest(spark, settings, "ing_done", COMPLETED, [("T1", NOV_1), ("T2", NOV_1_LATER)])
    # Killed after publishing, before its ledger row said `completed`: its re-run removes
    # these rows, and a later file may carry the same transactions again.
    write_ingest(spark, settings, "ing_crashed", STARTED, [("T1", NOV_1), ("T3", NOV_1_LATER)])

    assert counts_of_ingest(spark, settings, "ing_done") == [
        ("ing_done", "T1", 1),
        ("ing_done", "T2", 2),
    ]


def landing_file(path: Path, records: list[tuple[str, datetime]]) -> str:
    """A valid landing file of one account's EUR card payments."""
    lines = [contract.HEADER_LINE]
    for transaction_id, event_time in records:
        when = event_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(
            f"{transaction_id},{ACCOUNT},M0000001,12.50,EUR,{when},settled,card_present,"
            "5411,DE,Card purchase"
        )
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_transaction_id_resent_beyond_the_lookback_is_processed_once_per_ingest(
    spark: SparkSession, isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    assert (NOV_20 - NOV_1).days > settings.duplicate_lookback_days
    file_b = landing_file(tmp_path / "b.csv", [("X", NOV_1), ("T1", NOV_20)])
    file_a = landing_file(tmp_path / "a.csv", [("T1", NOV_1)])
    ingest_b = ingest_file(spark, settings, file_b)
    ingest_a = ingest_file(spark, settings, file_a)
    # Nov 20 is beyond the look-back of A's Nov 1: T1 is accepted a second time.
    assert (ingest_b.status, ingest_b.accepted, ingest_a.status, ingest_a.accepted) == (
        COMPLETED, 2, COMPLETED, 1,
    )  # fmt: skip

    first = process_records(spark, settings, ingest_id=ingest_a.ingest_id)
    second = process_records(spark, settings, ingest_id=ingest_b.ingest_id)

    assert first.reconciled and second.reconciled, second.reconciliation
    assert (first.exit_code, second.exit_code) == (0, 0)
    spark.sql(f"REFRESH TABLE {settings.table(PROCESSED_TRANSACTIONS)}")
    rows = spark.table(settings.table(PROCESSED_TRANSACTIONS)).select("ingest_id", "transaction_id")
    assert sorted(tuple(row) for row in rows.collect()) == sorted(
        [(ingest_a.ingest_id, "T1"), (ingest_b.ingest_id, "T1"), (ingest_b.ingest_id, "X")]
    )
