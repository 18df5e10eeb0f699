"""Feeds end to end on real Spark + Iceberg, read back by DuckDB: a second feed ingested with
no code change into its own namespace (a file and a stream batch), rule_version on every
ledger and rejected row, and an older warehouse gaining the new columns."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.feeds import load_feed
from sluiceway.ingest import ingest_file
from sluiceway.ingest.file_policy import FilePolicy
from sluiceway.stream.batch import KafkaBatch, ingest_batch
from sluiceway.tables import DEFINITIONS, INGEST_TABLES, JOB_RUNS, ensure_tables

pytestmark = pytest.mark.integration

FIXTURE_FEEDS = str(Path(__file__).resolve().parents[1] / "fixtures" / "feeds")
PAYOUTS = load_feed("payouts", FIXTURE_FEEDS)
PAYOUT_LINES = [
    "P1,Shop A,100.12,EUR,2026-11-25T10:00:00Z,3,sepa",
    "P2,Shop B,5.00,EUR,2026-11-25T11:00:00+01:00,,card",
    "P3,Shop C,7.5,USD,2026-11-24T12:00:00Z,4000,swift",  # accepted, warned: many_items
    "P4,Shop D,-1.00,EUR,2026-11-25T12:00:00Z,1,sepa",  # negative_payout
    "P5,Shop E,1.001,EUR,2026-11-25T12:00:00Z,1x,cash",  # three reasons, one fail_file
    'P6,"Shop, with a comma",2.00,GBP,2026-11-25T13:00:00Z,2,card',
    "P1,Shop A again,1.00,EUR,2026-11-25T14:00:00Z,1,sepa",  # duplicate_in_file
]
# Columns a warehouse of the release before feeds lacks.
NEW_COLUMNS = {"warnings", "rule_version"}


def test_a_second_feed_is_ingested_into_its_own_namespace_with_no_code_change(
    spark, isolated_settings, tmp_path, duckdb_query
):
    landing = tmp_path / "payouts-2026-11-25.csv"
    landing.write_text(PAYOUTS.header_line + "\n" + "\n".join(PAYOUT_LINES) + "\n")
    settings = isolated_settings.with_overrides({"feed": "payouts", "feeds_dir": FIXTURE_FEEDS})
    assert settings.namespace == "payouts"

    # P5 breaks the feed's fail_file rule (unknown_method), which refuses a whole file: this
    # first ingest sets the file policy aside to show every record's codes; the end of the
    # test sends such a file under the feed's own policy.
    result = ingest_file(spark, settings, str(landing), policy=FilePolicy(max_rejected_share=1.0))

    assert result.status == "completed", result.message
    assert (result.accepted, result.rejected) == (4, 3)
    accepted = duckdb_query(
        settings,
        "SELECT payout_id, merchant, net_amount, CAST(items AS VARCHAR), paid_at, warnings "
        "FROM transactions "
        "ORDER BY payout_id",
    )
    assert [(row[0], row[1], Decimal(str(row[2])), row[3], list(row[5])) for row in accepted] == [
        ("P1", "Shop A", Decimal("100.12"), "3", []),
        ("P2", "Shop B", Decimal("5.00"), None, []),
        ("P3", "Shop C", Decimal("7.50"), "4000", ["many_items"]),
        ("P6", "Shop, with a comma", Decimal("2.00"), "2", []),
    ]
    rejected = duckdb_query(
        settings, "SELECT payout_id, reasons, rule_version FROM rejected_records ORDER BY 1, 2"
    )
    assert [(row[0], list(row[1]), row[2]) for row in rejected] == [
        ("P1", [c.DUPLICATE_IN_FILE], PAYOUTS.rule_version),
        ("P4", ["negative_payout"], PAYOUTS.rule_version),
        ("P5", ["bad_net_amount", "bad_items", "unknown_method"], PAYOUTS.rule_version),
    ]
    ((rule_version, by_currency),) = duckdb_query(
        settings, "SELECT rule_version, accepted_count_by_currency FROM ingest_ledger"
    )
    assert rule_version == PAYOUTS.rule_version
    assert dict(by_currency) == {"EUR": 2, "USD": 1, "GBP": 1}
    # The transactions feed's namespace got none of it.
    tables = spark.sql(f"SHOW TABLES IN {isolated_settings.catalog}.payouts").collect()
    # A feed's namespace: its ingests' tables and the runs' own timings (no processing).
    assert {row.tableName for row in tables} == {*INGEST_TABLES, JOB_RUNS}
    assert not spark.catalog.tableExists(isolated_settings.table("transactions"))

    # Under the feed's own policy a file with an unknown method is refused whole (exit 2),
    # naming the line and the rule, and nothing of it is published.
    refused_file = tmp_path / "payouts-2026-11-26.csv"
    lines = [
        PAYOUTS.header_line,
        "P7,Shop G,3.00,EUR,2026-11-26T10:00:00Z,1,sepa",
        "P8,Shop H,4.00,EUR,2026-11-26T11:00:00Z,1,cash",
    ]
    refused_file.write_text("\n".join(lines) + "\n")
    refused = ingest_file(spark, settings, str(refused_file))
    assert (refused.status, refused.exit_code) == ("refused", 2)
    assert "line 3 was rejected for unknown_method" in refused.message
    published = duckdb_query(settings, "SELECT payout_id FROM transactions ORDER BY 1")
    assert [row[0] for row in published] == ["P1", "P2", "P3", "P6"]


def test_an_older_warehouse_gains_the_new_columns_and_keeps_its_rows(
    spark, isolated_settings, tmp_path, duckdb_query
):
    settings = isolated_settings
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog}.{settings.namespace}")
    for name in INGEST_TABLES:
        old = dataclasses.replace(
            DEFINITIONS[name],
            columns=tuple(col for col in DEFINITIONS[name].columns if col[0] not in NEW_COLUMNS),
        )
        spark.sql(old.ddl(settings.table(name)))
    known = {"ingest_id": "'old-ingest'", "source_file": "'old.csv'", "status": "'completed'"}
    values = ", ".join(
        known.get(name, f"CAST(NULL AS {kind})")
        for name, kind in DEFINITIONS["ingest_ledger"].columns
        if name not in NEW_COLUMNS
    )
    spark.sql(f"INSERT INTO {settings.table('ingest_ledger')} VALUES ({values})")

    ensure_tables(spark, settings, INGEST_TABLES)

    for name in INGEST_TABLES:
        columns = set(spark.table(settings.table(name)).columns)
        assert columns >= {col for col, _ in DEFINITIONS[name].columns}, name
    landing = tmp_path / "tx.csv"
    row = "T1,DE89000000037000000001,M1,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,x"
    landing.write_text(
        f"{c.HEADER_LINE}\n{row}\nT2,A,,x,EUR,2026-11-25T10:00:00Z,settled,atm,,DE,\n"
    )
    result = ingest_file(spark, settings, str(landing))
    assert result.status == "completed", result.message
    ledger = duckdb_query(settings, "SELECT ingest_id, rule_version FROM ingest_ledger ORDER BY 2")
    assert ledger == [(result.ingest_id, c.TRANSACTIONS_FEED.rule_version), ("old-ingest", None)]
    (warnings,) = duckdb_query(settings, "SELECT warnings FROM transactions")
    assert list(warnings[0]) == []
    (rejected,) = duckdb_query(settings, "SELECT reasons, rule_version FROM rejected_records")
    assert (list(rejected[0]), rejected[1]) == (
        [c.BAD_AMOUNT_FORMAT],
        c.TRANSACTIONS_FEED.rule_version,
    )


def test_a_second_feeds_stream_batch_uses_its_contract(spark, isolated_settings, duckdb_query):
    settings = isolated_settings.with_overrides({"feed": "payouts", "feeds_dir": FIXTURE_FEEDS})
    values = [
        b"S1,Shop A,10.00,EUR,2026-11-25T10:00:00Z,2000,sepa",  # accepted, warned
        b"S2,Shop B,-5.00,EUR,2026-11-25T10:00:00Z,1,sepa",  # negative_payout
        b"S1,Shop A,10.00,EUR,2026-11-25T10:00:00Z,1,sepa",  # delivered twice
    ]
    records = pa.table(
        {
            "partition": pa.array([0, 0, 0], pa.int32()),
            "offset": pa.array([0, 1, 2], pa.int64()),
            "value": pa.array(values, pa.binary()),
        }
    )

    result = ingest_batch(spark, settings, KafkaBatch.of("partner-payouts", records))

    assert result.status == "completed", result.message
    where = f"WHERE ingest_id = '{result.ingest_id}'"
    assert duckdb_query(settings, f"SELECT payout_id, warnings FROM transactions {where}") == [
        ("S1", ["many_items"])
    ]
    rejected = duckdb_query(
        settings,
        f"SELECT line_number, reasons, reason_detail, rule_version FROM rejected_records {where} "
        "ORDER BY 1",
    )
    assert [(row[0], list(row[1]), row[3]) for row in rejected] == [
        (1, ["negative_payout"], PAYOUTS.rule_version),
        (2, [c.DUPLICATE_IN_FILE], PAYOUTS.rule_version),
    ]
    assert "payout_id 'S1' already delivered at" in rejected[1][2]
    (ledger_rule,) = duckdb_query(settings, f"SELECT rule_version FROM ingest_ledger {where}")
    assert ledger_rule == (PAYOUTS.rule_version,)
