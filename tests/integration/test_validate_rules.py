"""Each validation rule on a few-row DataFrame: one named reason code per broken rule."""

from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from sluiceway import contract as c
from sluiceway.ingest.validate import (
    flag_already_ingested,
    flag_duplicates_in_file,
    to_transactions,
    validate,
)

pytestmark = pytest.mark.integration

GOOD = dict(
    zip(
        c.COLUMN_NAMES,
        "T1,DE89001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,coffee".split(","),
        strict=True,
    )
)
SCHEMA = (
    "line_number bigint, last_line_number bigint, raw_line string, raw_bytes binary, "
    "field_count int, parse_error string, "
) + ", ".join(f"{name} string" for name in c.COLUMN_NAMES)


def frame(spark, *changes: dict, parse_error: str | None = None, field_count: int = 11):
    rows = []
    for number, change in enumerate(changes, start=2):
        values = {**GOOD, "transaction_id": f"T{number}", **change}
        fields = [values[n] for n in c.COLUMN_NAMES]
        rows.append((number, number, "raw", None, field_count, parse_error, *fields))
    return spark.createDataFrame(rows, SCHEMA)


BROKEN = [
    ("amount", "12.345", c.BAD_AMOUNT_FORMAT),
    ("amount", "1,000.00", c.BAD_AMOUNT_FORMAT),
    ("amount", "1e3", c.BAD_AMOUNT_FORMAT),
    ("amount", "+5.00", c.BAD_AMOUNT_FORMAT),
    ("amount", "1000000000.01", c.AMOUNT_OUT_OF_RANGE),
    ("amount", "-1000000000.01", c.AMOUNT_OUT_OF_RANGE),
    ("currency", "XXY", c.UNKNOWN_CURRENCY),
    ("currency", "eur", c.UNKNOWN_CURRENCY),
    ("country", "XX", c.UNKNOWN_COUNTRY),
    ("event_time", "2026-02-30T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00", c.BAD_EVENT_TIME),
    ("event_time", "25/11/2026 10:00", c.BAD_EVENT_TIME),
    ("status", "done", c.UNKNOWN_STATUS),
    ("channel", "fax", c.UNKNOWN_CHANNEL),
    ("mcc", "54A1", c.BAD_MCC),
    ("event_time", "9999-12-31T23:59:59Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "0001-01-01T00:00:00Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "1899-12-31T23:59:59Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("description", "x" * (c.DESCRIPTION_MAX_LENGTH + 1), c.FIELD_TOO_LONG),
    ("transaction_id", "T" * 257, c.FIELD_TOO_LONG),
    ("account_id", "", c.MISSING_REQUIRED),
    ("amount", "", c.MISSING_REQUIRED),
    ("currency", " ", c.MISSING_REQUIRED),
]
VALID_VARIANTS = [
    ("amount", "-12.5"),
    ("amount", "1000000000.00"),
    ("amount", "7"),
    ("event_time", "2026-11-25T10:00:00.123456+01:00"),
    ("event_time", "2026-11-25 10:00:00Z"),
    ("event_time", "1900-01-01T00:00:00Z"),
    ("description", "x" * c.DESCRIPTION_MAX_LENGTH),
    ("mcc", ""),
    ("counterparty_id", ""),
    ("description", ""),
]


def test_each_broken_rule_gives_its_reason_code_only(spark):
    # One DataFrame for all cases: one Spark job instead of one per case.
    rows = validate(frame(spark, *[{field: value} for field, value, _ in BROKEN])).collect()
    found = {
        (f, v): r.reasons
        for (f, v, _), r in zip(BROKEN, sorted(rows, key=lambda r: r.line_number), strict=True)
    }
    expected = {(f, v): [reason] for f, v, reason in BROKEN}
    assert found == expected


def test_valid_variants_are_accepted(spark):
    rows = validate(frame(spark, *[{field: value} for field, value in VALID_VARIANTS])).collect()
    found = {
        (f, v): r.reasons
        for (f, v), r in zip(VALID_VARIANTS, sorted(rows, key=lambda r: r.line_number), strict=True)
    }
    assert found == {case: [] for case in VALID_VARIANTS}


def test_amount_is_never_rounded(spark):
    accepted = validate(frame(spark, {"amount": "12.34"}, {"amount": "12.345"}))
    lineage = {
        "source_file": F.lit("f"),
        "ingest_id": F.lit("i"),
        "ingested_at": F.current_timestamp(),
    }
    amounts = [row.amount for row in to_transactions(accepted, lineage).collect()]
    assert amounts == [Decimal("12.34")]


def test_wrong_field_count_and_parse_errors_skip_field_rules(spark):
    wrong = validate(frame(spark, {"amount": None}, field_count=3)).first()
    assert wrong.reasons == [c.WRONG_FIELD_COUNT]
    assert "3 fields, expected 11" in wrong.reason_detail
    broken = validate(frame(spark, {}, parse_error=c.INVALID_ENCODING)).first()
    assert broken.reasons == [c.INVALID_ENCODING]


def test_several_broken_rules_are_all_named(spark):
    row = validate(frame(spark, {"currency": "XXY", "status": "done"})).first()
    assert sorted(row.reasons) == [c.UNKNOWN_CURRENCY, c.UNKNOWN_STATUS]
    assert "currency 'XXY'" in row.reason_detail and "status 'done'" in row.reason_detail


def test_only_later_occurrences_of_an_id_are_duplicates(spark):
    records = frame(
        spark, {"transaction_id": "A"}, {"transaction_id": "B"}, {"transaction_id": "A"}
    )
    flagged = flag_duplicates_in_file(validate(records)).select("line_number", "reasons")
    expected = spark.createDataFrame(
        [(2, []), (3, []), (4, [c.DUPLICATE_IN_FILE])], "line_number bigint, reasons array<string>"
    )
    assert_df_equality(flagged, expected, ignore_row_order=True, ignore_nullable=True)


def test_ids_already_in_the_table_are_rejected(spark):
    records = validate(frame(spark, {"transaction_id": "OLD"}, {"transaction_id": "NEW"}))
    existing = spark.createDataFrame([("OLD",)], "transaction_id string")
    flagged = flag_already_ingested(records, existing).select("transaction_id", "reasons")
    expected = spark.createDataFrame(
        [("OLD", [c.ALREADY_INGESTED]), ("NEW", [])], "transaction_id string, reasons array<string>"
    )
    assert_df_equality(flagged, expected, ignore_row_order=True, ignore_nullable=True)
