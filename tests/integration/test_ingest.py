"""The ingest end to end on real Spark + Iceberg, read back by DuckDB as an independent reader."""

from __future__ import annotations

import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.contract import HEADER_LINE
from sluiceway.errors import LandingFileError
from sluiceway.ingest import ingest_file
from sluiceway.tables import INGEST_LEDGER, REJECTED_RECORDS, TRANSACTIONS, current_snapshot_id

pytestmark = pytest.mark.integration

ROW = "{id},DE89000000037000000001,M1,{amount},EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,x"


def write_landing(path: Path, *rows: str) -> Path:
    path.write_text(HEADER_LINE + "\n" + "".join(row + "\n" for row in rows))
    return path


def test_generated_file_reconciles_with_its_manifest(
    spark, isolated_settings, landing_with_defects, duckdb_query
):
    landing, manifest = landing_with_defects
    result = ingest_file(spark, isolated_settings, str(landing))
    assert result.status == "completed", result.message
    assert "manifest matched" in result.message
    assert result.lines_read == manifest.lines
    assert manifest.records == result.accepted + result.rejected
    assert result.rejected_by_reason == dict(manifest.rejected_by_reason)

    # Read back by DuckDB, not Spark: what analysts will see.
    totals = duckdb_query(
        isolated_settings,
        "SELECT currency, COUNT(*), SUM(amount) FROM transactions GROUP BY 1 ORDER BY 1",
    )
    expected = json.loads(Path(f"{landing}.manifest.json").read_text())
    assert {cur: (n, Decimal(str(total))) for cur, n, total in totals} == {
        cur: (expected["accepted_count_by_currency"][cur], Decimal(amount))
        for cur, amount in expected["accepted_amount_by_currency"].items()
    }
    (rejected,) = duckdb_query(isolated_settings, "SELECT COUNT(*) FROM rejected_records")
    assert rejected == (manifest.rejected,)
    ((status, lines, accepted),) = duckdb_query(
        isolated_settings, "SELECT status, lines_read, accepted FROM ingest_ledger"
    )
    assert (status, lines, accepted) == ("completed", manifest.lines, manifest.accepted)


def test_every_rejected_line_keeps_raw_text_line_number_and_reason(
    spark, isolated_settings, tmp_path
):
    landing = write_landing(
        tmp_path / "bad.csv",
        ROW.format(id="A1", amount="12.345"),
        ROW.format(id="A2", amount="5.00"),
        "A3,too,few",
    )
    ingest_file(spark, isolated_settings, str(landing))
    rows = spark.table(isolated_settings.table(REJECTED_RECORDS)).orderBy("line_number").collect()
    assert [(r.line_number, r.reasons) for r in rows] == [
        (2, [c.BAD_AMOUNT_FORMAT]),
        (4, [c.WRONG_FIELD_COUNT]),
    ]
    # account_id and counterparty_id are sensitive: masked, the last four kept.
    assert rows[0].raw_line == ROW.format(id="A1", amount="12.345").replace(
        "DE89000000037000000001,M1,", "*" * 18 + "0001,**,"
    )
    assert rows[0].reason_detail.startswith("line 2: bad_amount_format: amount '12.345'")
    assert rows[0].source_file == str(landing)


def test_same_file_twice_changes_nothing_and_says_so(spark, isolated_settings, tmp_path):
    landing = write_landing(tmp_path / "once.csv", ROW.format(id="B1", amount="1.00"))
    first = ingest_file(spark, isolated_settings, str(landing))
    tables = (TRANSACTIONS, REJECTED_RECORDS, INGEST_LEDGER)
    before = [current_snapshot_id(spark, isolated_settings, name) for name in tables]
    renamed = shutil.copy(landing, tmp_path / "renamed-copy.csv")
    for again in (str(landing), str(renamed)):
        second = ingest_file(spark, isolated_settings, again)
        assert second.status == "skipped" and second.ingest_id == first.ingest_id
        assert "already ingested" in second.message and "nothing changed" in second.message
    assert [current_snapshot_id(spark, isolated_settings, name) for name in tables] == before


def test_wrong_header_fails_the_file_and_writes_nothing(spark, isolated_settings, tmp_path):
    landing = tmp_path / "header.csv"
    landing.write_text(HEADER_LINE.replace("amount", "amt") + "\n" + ROW.format(id="C", amount="1"))
    with pytest.raises(LandingFileError, match=r"header\.csv: wrong header.*'amount'"):
        ingest_file(spark, isolated_settings, str(landing))
    namespaces = [row[0] for row in spark.sql("SHOW NAMESPACES IN lake").collect()]
    assert isolated_settings.namespace not in namespaces


def test_id_from_an_earlier_file_is_rejected_as_already_ingested(
    spark, isolated_settings, tmp_path
):
    day_one = write_landing(tmp_path / "d1.csv", ROW.format(id="D1", amount="1.00"))
    day_two = write_landing(
        tmp_path / "d2.csv", ROW.format(id="D1", amount="1.00"), ROW.format(id="D2", amount="2.00")
    )
    ingest_file(spark, isolated_settings, str(day_one))
    result = ingest_file(spark, isolated_settings, str(day_two))
    assert (result.accepted, result.rejected_by_reason) == (1, {c.ALREADY_INGESTED: 1})
    ids = spark.table(isolated_settings.table(TRANSACTIONS)).groupBy("transaction_id").count()
    assert sorted((r.transaction_id, r["count"]) for r in ids.collect()) == [("D1", 1), ("D2", 1)]


def test_gzip_landing_file_gives_the_same_rows(spark, isolated_settings, tmp_path):
    plain = write_landing(
        tmp_path / "z.csv", ROW.format(id="E1", amount="3.10"), ROW.format(id="E2", amount="x")
    )
    packed = tmp_path / "z.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    result = ingest_file(spark, isolated_settings, str(packed))
    assert (result.lines_read, result.accepted, result.rejected) == (2, 1, 1)
    lines = spark.table(isolated_settings.table(REJECTED_RECORDS)).first().line_number
    assert lines == 3


def test_header_only_file_is_a_completed_empty_day(spark, isolated_settings, tmp_path):
    landing = write_landing(tmp_path / "quiet-day.csv")
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.lines_read, result.accepted, result.rejected) == (
        "completed",
        0,
        0,
        0,
    )


def test_manifest_mismatch_marks_the_file_failed(spark, isolated_settings, tmp_path):
    landing = write_landing(tmp_path / "m.csv", ROW.format(id="F1", amount="1.00"))
    manifest = tmp_path / "m.csv.manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "records": 1,
                "accepted": 1,
                "rejected": 0,
                "rejected_by_reason": {},
                "accepted_amount_by_currency": {"EUR": "2.00"},
            }
        )
    )
    result = ingest_file(spark, isolated_settings, str(landing))
    assert result.status == "failed" and result.exit_code == 3
    assert "accepted amount by currency" in result.message
    ledger = spark.table(isolated_settings.table(INGEST_LEDGER)).first()
    assert (ledger.status, ledger.manifest_checked) == ("failed", True)
    assert spark.table(isolated_settings.table(TRANSACTIONS)).count() == 0
