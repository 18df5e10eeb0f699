"""Ids no one can tell apart (issue 17), through the real job and `sluiceway check`: a BOM at a
line start is dropped, so a later file's BOM-less id is already_ingested; invisible
characters, controls and edge spaces in ids are bad_identifier; check and ingest agree line by
line. Tables read back with DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.ingest import ingest_file
from sluiceway.ingest.check import check_landing_file

pytestmark = pytest.mark.integration

BOM = "\ufeff"
ROW = "{id},{account},{counterparty},1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,{text}"


def row(transaction_id: str, text: str = "x", account: str = "DE89001", counterparty: str = "M1"):
    return ROW.format(id=transaction_id, account=account, counterparty=counterparty, text=text)


def write_landing(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([BOM + c.HEADER_LINE, *lines]) + "\n", encoding="utf-8")
    return path


def test_check_and_ingest_give_the_same_verdict_on_every_line(
    spark, isolated_settings, tmp_path, duckdb_query
):
    landing = write_landing(
        tmp_path / "excel-parts.csv",
        BOM + row("T1"),  # line 2: accepted as T1
        BOM + row('"T2"', text='"a, b"'),  # line 3: accepted as T2
        row("T\u200b3"),  # line 4
        row("T\x004"),  # line 5
        row(" T5"),  # line 6
        row("T6 "),  # line 7
        row("T7", account="DE89\u00a0001"),  # line 8
        row("T1", text="again"),  # line 9: the id of line 2
        row("T8", counterparty="M1 "),  # line 10
        row("T9", text='"two\nlines"'),  # lines 11-12: accepted
    )
    checked = check_landing_file(str(landing), isolated_settings, show=100, workers=1)
    ingested = ingest_file(spark, isolated_settings, str(landing))

    assert ingested.status == "completed", ingested.message
    assert (checked.lines, checked.accepted, checked.rejected, checked.rejected_by_reason) == (
        ingested.lines_read,
        ingested.accepted,
        ingested.rejected,
        ingested.rejected_by_reason,
    )
    assert ingested.rejected_by_reason == {c.BAD_IDENTIFIER: 6, c.DUPLICATE_IN_FILE: 1}
    stored = duckdb_query(
        isolated_settings,
        "SELECT line_number, last_line_number, reasons, reason_detail, raw_line "
        "FROM rejected_records ORDER BY line_number",
    )
    assert [
        (r.line_number, r.last_line_number, list(r.reasons), r.reason_detail, r.raw_line)
        for r in checked.first_rejected
    ] == [(line, last, list(reasons), detail, raw) for line, last, reasons, detail, raw in stored]
    assert [line for line, *_ in stored] == [4, 5, 6, 7, 8, 9, 10]
    accepted = duckdb_query(
        isolated_settings, "SELECT transaction_id FROM transactions ORDER BY transaction_id"
    )
    assert accepted == [("T1",), ("T2",), ("T9",)]


def test_a_later_file_with_the_id_without_its_bom_is_already_ingested(
    spark, isolated_settings, tmp_path, duckdb_query
):
    first = write_landing(tmp_path / "day-1.csv", BOM + row("T1"), row("T2"))
    later = write_landing(tmp_path / "day-2.csv", row("T1"), BOM + row("T2"), row("T3"))
    assert ingest_file(spark, isolated_settings, str(first)).accepted == 2

    again = ingest_file(spark, isolated_settings, str(later))

    assert (again.accepted, again.rejected_by_reason) == (1, {c.ALREADY_INGESTED: 2})
    counted = duckdb_query(
        isolated_settings,
        "SELECT transaction_id, COUNT(*) FROM transactions GROUP BY 1 ORDER BY 1",
    )
    assert counted == [("T1", 1), ("T2", 1), ("T3", 1)]
