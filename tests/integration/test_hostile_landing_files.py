"""Hostile landing files, as a partner's export tool produces them: damage stays in its line.

One test per case of the issue "Hostile landing files": each asserts the exact reason codes
and line numbers of the damaged records, that every other record was accepted unchanged, and
reads the tables back with DuckDB (an independent Iceberg reader), not Spark.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.contract import HEADER_LINE
from sluiceway.errors import LandingFileError
from sluiceway.ingest import ingest_file
from sluiceway.ingest.run import ingest_id_for
from sluiceway.settings import Settings

pytestmark = pytest.mark.integration

ROW = "{id},DE89000000037000000001,M1,{amount},EUR,{time},settled,ecommerce,5411,DE,{text}"


def row(number: int, text: str = "coffee", time: str = "2026-11-25T10:00:00Z") -> str:
    return ROW.format(id=f"T{number:06d}", amount=f"{number % 997}.25", time=time, text=text)


def landing_bytes(rows: list[str], line_end: str = "\n") -> bytes:
    return (line_end.join([HEADER_LINE, *rows]) + line_end).encode("utf-8")


def accepted_ids(duckdb_query, settings: Settings) -> list[str]:
    return [r[0] for r in duckdb_query(settings, "SELECT transaction_id FROM transactions")]


def rejected(duckdb_query, settings: Settings) -> list[tuple]:
    return duckdb_query(
        settings,
        "SELECT line_number, last_line_number, reasons, transaction_id FROM rejected_records "
        "ORDER BY line_number",
    )


def assert_nothing_written(spark, settings: Settings) -> None:
    """A whole-file failure leaves no namespace, or at least no rows and no ledger entry."""
    namespaces = [r[0] for r in spark.sql("SHOW NAMESPACES IN lake").collect()]
    if settings.namespace in namespaces:
        for table in ("transactions", "rejected_records", "ingest_ledger"):
            if spark.catalog.tableExists(settings.table(table)):
                assert spark.table(settings.table(table)).count() == 0, table


def test_stray_quote_in_a_description_costs_only_its_line(
    spark, isolated_settings, tmp_path, duckdb_query
):
    rows = [row(n) for n in range(1000)]
    rows[0] = row(0, text='12" pizza')
    landing = tmp_path / "pizza.csv"
    landing.write_bytes(landing_bytes(rows))
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.lines_read, result.accepted, result.rejected) == (
        "completed",
        1000,
        999,
        1,
    )
    assert rejected(duckdb_query, isolated_settings) == [(2, 2, [c.BAD_QUOTING], "T000000")]
    assert sorted(accepted_ids(duckdb_query, isolated_settings)) == [
        f"T{n:06d}" for n in range(1, 1000)
    ]


def test_cr_only_line_endings_are_read_as_lines(spark, isolated_settings, tmp_path, duckdb_query):
    rows = [row(n) for n in range(5000)]
    landing = tmp_path / "old-mac.csv"
    landing.write_bytes(landing_bytes(rows, line_end="\r"))
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.lines_read, result.accepted, result.rejected) == (
        "completed",
        5000,
        5000,
        0,
    )
    ((total,),) = duckdb_query(isolated_settings, "SELECT SUM(amount) FROM transactions")
    assert total == sum(n % 997 + 0.25 for n in range(5000))


def test_truncated_gzip_fails_the_file_and_writes_nothing(spark, isolated_settings, tmp_path):
    packed = gzip.compress(landing_bytes([row(n) for n in range(3000)]))
    landing = tmp_path / "cut.csv.gz"
    landing.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(LandingFileError, match=r"cut\.csv\.gz: truncated gzip") as failure:
        ingest_file(spark, isolated_settings, str(landing))
    assert failure.value.exit_code == 2
    assert_nothing_written(spark, isolated_settings)


def test_every_member_of_a_multi_member_gzip_is_ingested(
    spark, isolated_settings, tmp_path, duckdb_query
):
    first = landing_bytes([row(n) for n in range(1500)])
    second = ("\n".join(row(n) for n in range(1500, 3000)) + "\n").encode()
    landing = tmp_path / "appended.csv.gz"
    landing.write_bytes(gzip.compress(first) + gzip.compress(second))
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.lines_read, result.accepted) == ("completed", 3000, 3000)
    assert len(set(accepted_ids(duckdb_query, isolated_settings))) == 3000


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_an_event_time_no_reader_can_hold_is_one_rejected_record(
    spark, isolated_settings, tmp_path, duckdb_query, instant
):
    rows = [row(n) for n in range(20)]
    rows[5] = row(5, time=instant)
    landing = tmp_path / "far.csv"
    landing.write_bytes(landing_bytes(rows))
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.accepted) == ("completed", 19)
    assert rejected(duckdb_query, isolated_settings) == [
        (7, 7, [c.EVENT_TIME_OUT_OF_RANGE], "T000005")
    ]
    # A re-run is no longer stuck: the ledger says completed and the file is skipped.
    assert ingest_file(spark, isolated_settings, str(landing)).status == "skipped"


def test_zero_byte_files_fail_with_no_header_every_time(spark, isolated_settings, tmp_path):
    for name in ("failed-delivery.csv", "another-failed-delivery.csv"):
        landing = tmp_path / name
        landing.write_bytes(b"")
        with pytest.raises(LandingFileError, match=rf"{name}: no header: the file is empty"):
            ingest_file(spark, isolated_settings, str(landing))
    assert_nothing_written(spark, isolated_settings)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid UTF-8 JSON"),
        ('{"accepted": 1, "rejected": 0}', "the figure 'records' is missing"),
        ('{"records": "many", "accepted": 1, "rejected": 0}', "records: 'many' is not"),
        ('{"records": 1, "accepted": 1, "rejected": 0, "rejected_by_reason": []}', "not a JSON"),
    ],
)
def test_malformed_manifest_fails_the_file_before_anything_is_written(
    spark, isolated_settings, tmp_path, content, problem
):
    landing = tmp_path / "with-manifest.csv"
    landing.write_bytes(landing_bytes([row(1)]))
    Path(f"{landing}.manifest.json").write_text(content)
    with pytest.raises(LandingFileError, match=rf"malformed manifest: .*{problem}"):
        ingest_file(spark, isolated_settings, str(landing))
    assert_nothing_written(spark, isolated_settings)


def test_quoted_field_longer_than_128_kib_keeps_its_transaction_id(
    spark, isolated_settings, tmp_path, duckdb_query
):
    rows = [row(n) for n in range(10)]
    rows[3] = row(3, text='"' + "long " * 30_000 + '"')
    landing = tmp_path / "long.csv"
    landing.write_bytes(landing_bytes(rows))
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.accepted) == ("completed", 9)
    assert rejected(duckdb_query, isolated_settings) == [(5, 5, [c.FIELD_TOO_LONG], "T000003")]


def test_latin1_byte_is_rejected_with_its_original_bytes(
    spark, isolated_settings, tmp_path, duckdb_query
):
    rows = [row(n) for n in range(10)]
    landing = tmp_path / "latin1.csv"
    data = landing_bytes(rows).replace(b"T000004,DE89", b"T000004,D\xc9")
    landing.write_bytes(data)
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.accepted) == ("completed", 9)
    ((line, reasons, raw_line, raw_bytes),) = duckdb_query(
        isolated_settings, "SELECT line_number, reasons, raw_line, raw_bytes FROM rejected_records"
    )
    assert (line, reasons) == (6, [c.INVALID_ENCODING])
    original = data.split(b"\n")[5]
    # account_id and counterparty_id are sensitive: masked, the bad byte counting as one
    # character of the account (20 characters, the last four kept).
    masked = original.replace(b"D\xc9000000037000000001,M1,", b"*" * 16 + b"0001,**,")
    assert bytes(raw_bytes) == masked != original and b"\xc9" in original
    assert raw_line == masked.decode("utf-8", errors="backslashreplace")


def test_failed_reconciliation_leaves_no_rows_and_a_corrected_resend_is_accepted(
    spark, isolated_settings, tmp_path, duckdb_query
):
    rows = [row(n) for n in range(50)]
    wrong = tmp_path / "day.csv"
    wrong.write_bytes(landing_bytes(rows))
    Path(f"{wrong}.manifest.json").write_text(
        json.dumps({"records": 51, "accepted": 51, "rejected": 0})
    )
    failed = ingest_file(spark, isolated_settings, str(wrong))
    assert (failed.status, failed.exit_code) == ("failed", 3)
    assert accepted_ids(duckdb_query, isolated_settings) == []
    ((status,),) = duckdb_query(isolated_settings, "SELECT status FROM ingest_ledger")
    assert status == "failed"

    corrected = tmp_path / "day-resend.csv"
    corrected.write_bytes(landing_bytes([*rows, row(50)]))
    resend = ingest_file(spark, isolated_settings, str(corrected))
    assert (resend.status, resend.accepted, resend.rejected) == ("completed", 51, 0)
    assert resend.ingest_id == ingest_id_for_file(corrected)
    assert len(accepted_ids(duckdb_query, isolated_settings)) == 51


def ingest_id_for_file(path: Path) -> str:
    return ingest_id_for(hashlib.sha256(path.read_bytes()).hexdigest())
