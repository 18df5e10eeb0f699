"""Each validation rule on a few Arrow records: one named reason code per broken rule, the
detail a person reads, typed values, and the two table shapes; no Spark."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.ingest import event_time
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize
from sluiceway.ingest.reasons import add_reason
from sluiceway.ingest.table_rows import Lineage, to_rejected, to_transactions
from sluiceway.ingest.validate import validate
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS, arrow_schema

pytestmark = pytest.mark.unit

GOOD = dict(
    zip(
        c.COLUMN_NAMES,
        "T1,DE89001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,coffee".split(","),
        strict=True,
    )
)
LINEAGE = Lineage("s3://landing/tx.csv", "ingest-1", datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC))


def records(
    *changes: dict[str, str | None], parse_error: str | None = None, field_count: int = 11
) -> pa.Table:
    """One record per change to a valid record, on lines 2, 3, ...; raw_line null (plain)."""
    rows = []
    for number, change in enumerate(changes, start=2):
        values = {**GOOD, "transaction_id": f"T{number}", **change}
        rows.append(
            {
                "line_number": number,
                "last_line_number": number,
                "field_count": field_count,
                "parse_error": parse_error,
                **values,
            }
        )
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def reasons_of(*changes: dict[str, str | None]) -> list[list[str]]:
    return validate(records(*changes)).column("reasons").to_pylist()


BROKEN = [
    ("amount", "12.345", c.BAD_AMOUNT_FORMAT),
    ("amount", "1,000.00", c.BAD_AMOUNT_FORMAT),
    ("amount", "1e3", c.BAD_AMOUNT_FORMAT),
    ("amount", "+5.00", c.BAD_AMOUNT_FORMAT),
    ("amount", "12.34 ", c.BAD_AMOUNT_FORMAT),
    ("amount", "12.30\n", c.BAD_AMOUNT_FORMAT),
    ("amount", "1000000000.01", c.AMOUNT_OUT_OF_RANGE),
    ("amount", "-1000000000.01", c.AMOUNT_OUT_OF_RANGE),
    ("amount", "9999999999999999.99", c.AMOUNT_OUT_OF_RANGE),
    ("currency", "XXY", c.UNKNOWN_CURRENCY),
    ("currency", "eur", c.UNKNOWN_CURRENCY),
    ("country", "XX", c.UNKNOWN_COUNTRY),
    ("event_time", "2026-02-30T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2023-02-29T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2100-02-29T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-31T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-13-01T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-00-10T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-00T10:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T24:00:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:60:00Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:60Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00+19:00", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00+18:01", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00+01:60", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00.1234567Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00.Z", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00", c.BAD_EVENT_TIME),
    ("event_time", "2026-11-25T10:00:00Z\n", c.BAD_EVENT_TIME),
    ("event_time", "25/11/2026 10:00", c.BAD_EVENT_TIME),
    ("status", "done", c.UNKNOWN_STATUS),
    ("channel", "fax", c.UNKNOWN_CHANNEL),
    ("mcc", "54A1", c.BAD_MCC),
    ("mcc", "541", c.BAD_MCC),
    ("mcc", "5411\n", c.BAD_MCC),
    ("event_time", "9999-12-31T23:59:59Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "0001-01-01T00:00:00Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "0000-02-29T00:00:00Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "1899-12-31T23:59:59Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "1900-01-01T00:30:00+01:00", c.EVENT_TIME_OUT_OF_RANGE),
    ("event_time", "2999-12-31T23:59:59.000001Z", c.EVENT_TIME_OUT_OF_RANGE),
    ("description", "x" * (c.DESCRIPTION_MAX_LENGTH + 1), c.FIELD_TOO_LONG),
    ("transaction_id", "T" * 257, c.FIELD_TOO_LONG),
    ("counterparty_id", "é" * 257, c.FIELD_TOO_LONG),
    ("account_id", "\t", c.BAD_IDENTIFIER),  # not blank (Spark's trim), but a control
    ("account_id", "", c.MISSING_REQUIRED),
    ("account_id", None, c.MISSING_REQUIRED),
    ("amount", "", c.MISSING_REQUIRED),
    ("currency", " ", c.MISSING_REQUIRED),
    ("country", "   ", c.MISSING_REQUIRED),
]
VALID_VARIANTS = [
    ("amount", "-12.5"),
    ("amount", "1000000000.00"),
    ("amount", "-1000000000.00"),
    ("amount", "7"),
    ("amount", "0000000000000007.1"),
    ("event_time", "2026-11-25T10:00:00.123456+01:00"),
    ("event_time", "2026-11-25 10:00:00Z"),
    ("event_time", "2026-11-25T10:00:00.5-18:00"),
    ("event_time", "2024-02-29T23:59:59+14:00"),
    ("event_time", "2000-02-29T00:00:00Z"),
    ("event_time", "1900-01-01T00:00:00Z"),
    ("event_time", "1900-01-01T00:30:00-01:00"),
    ("event_time", "2999-12-31T23:59:59Z"),
    ("description", "x" * c.DESCRIPTION_MAX_LENGTH),
    ("description", "é" * c.DESCRIPTION_MAX_LENGTH),
    ("mcc", ""),
    ("mcc", None),
    ("counterparty_id", ""),
    ("description", ""),
]


def test_each_broken_rule_gives_its_reason_code_only() -> None:
    found = reasons_of(*[{field: value} for field, value, _ in BROKEN])
    assert dict(zip(BROKEN, found, strict=True)) == {case: [case[2]] for case in BROKEN}


def test_valid_variants_are_accepted() -> None:
    found = reasons_of(*[{field: value} for field, value in VALID_VARIANTS])
    assert dict(zip(VALID_VARIANTS, found, strict=True)) == {case: [] for case in VALID_VARIANTS}


def test_event_times_are_the_instants_python_reads() -> None:
    rng = random.Random(3)
    texts = []
    for _ in range(500):
        moment = datetime(1900, 1, 2, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(0, 1099 * 365 * 86400), microseconds=rng.randrange(10**6)
        )
        offset = timedelta(minutes=rng.randrange(-18 * 60, 18 * 60 + 1))
        local = moment.astimezone(timezone(offset))
        separator = rng.choice("T ")
        text = local.isoformat(sep=separator, timespec=rng.choice(["seconds", "microseconds"]))
        texts.append(text.replace("+00:00", "Z") if rng.random() < 0.3 else text)
    validated = validate(records(*[{"event_time": text} for text in texts]))
    assert validated.column("reasons").to_pylist() == [[]] * len(texts)
    expected = [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in texts]
    assert validated.column("event_time_value").to_pylist() == expected


def canonical_event_time(rng: random.Random) -> bytes:
    """20 bytes near `YYYY-MM-DDThh:mm:ssZ`: real instants, impossible dates and times
    (2026-02-29, 24:00:00, 23:59:60, month 13, day 00) and changed bytes."""
    year, month, day = rng.randrange(10000), rng.randrange(0, 14), rng.randrange(0, 33)
    hour, minute, second = rng.randrange(0, 26), rng.randrange(0, 61), rng.randrange(0, 61)
    separator = rng.choice("T T ")
    text = bytearray(
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}Z",
        "ascii",
    )
    if rng.random() < 0.3:
        text[rng.randrange(20)] = rng.choice(b"0123456789-:TZ tz/\x00\xff")
    return bytes(text)


def test_the_usual_event_times_take_a_shortcut_with_the_same_results() -> None:
    rng = random.Random(9)
    texts = [canonical_event_time(rng) for _ in range(50_000)]
    values = pa.array(texts, pa.binary()).cast(pa.string(), safe=False)
    candidates = np.array([rng.random() < 0.95 for _ in texts])
    shortcut = event_time._uniform_utc(values, candidates)
    assert shortcut is not None
    general = event_time._any_shape(values, candidates)
    assert shortcut[1].tolist() == general[1].tolist()
    assert shortcut[0].tolist() == general[0].tolist()
    assert 0.2 < general[1].mean() < 0.9  # plenty of real and impossible instants
    # Any other length, or a null, takes the general path.
    assert event_time._uniform_utc(pa.array(["2026-11-25T10:00:00.5Z"]), candidates[:1]) is None
    assert event_time._uniform_utc(pa.array([None], pa.string()), candidates[:1]) is None


def test_short_fractions_are_tenths_and_hundredths_of_a_second() -> None:
    validated = validate(
        records({"event_time": "2026-11-25 10:00:00.5Z"}, {"event_time": "2026-11-25T10:00:00.05Z"})
    )
    assert validated.column("event_time_value").to_pylist() == [
        datetime(2026, 11, 25, 10, 0, 0, 500000, tzinfo=UTC),
        datetime(2026, 11, 25, 10, 0, 0, 50000, tzinfo=UTC),
    ]


def test_typed_values_are_null_unless_valid() -> None:
    validated = validate(
        records(
            {"amount": "-12.5"},
            {"amount": "12.345", "event_time": "2026-02-30T10:00:00Z"},
            {"amount": "2000000000", "event_time": "9999-12-31T23:59:59Z"},
        )
    )
    assert validated.column("amount_value").type == pa.decimal128(18, 2)
    assert validated.column("amount_value").to_pylist() == [Decimal("-12.50"), None, None]
    assert validated.column("event_time_value").type == pa.timestamp("us", tz="UTC")
    assert validated.column("event_time_value").to_pylist() == [
        datetime(2026, 11, 25, 10, tzinfo=UTC),
        None,
        None,
    ]


def test_amount_is_never_rounded() -> None:
    accepted = to_transactions(
        validate(records({"amount": "12.34"}, {"amount": "12.345"})), LINEAGE
    )
    assert accepted.column("amount").to_pylist() == [Decimal("12.34")]


def test_wrong_field_count_and_parse_errors_skip_field_rules() -> None:
    wrong = validate(records({"amount": None, "currency": "XXY"}, field_count=3)).to_pylist()[0]
    assert wrong["reasons"] == [c.WRONG_FIELD_COUNT]
    assert wrong["reason_detail"] == "wrong_field_count: 3 fields, expected 11"
    broken = validate(records({"currency": "XXY"}, parse_error=c.INVALID_ENCODING)).to_pylist()[0]
    assert broken["reasons"] == [c.INVALID_ENCODING]
    assert broken["reason_detail"] == f"invalid_encoding: {c.REASONS[c.INVALID_ENCODING]}"


def test_several_broken_rules_are_all_named_in_rule_order() -> None:
    (row,) = validate(records({"status": "done", "currency": "XXY", "mcc": "x"})).to_pylist()
    assert row["reasons"] == [c.UNKNOWN_CURRENCY, c.UNKNOWN_STATUS, c.BAD_MCC]
    assert row["reason_detail"] == (
        "unknown_currency: currency 'XXY' is not an ISO 4217 code; "
        "unknown_status: status 'done' is not settled, pending, failed, reversed; "
        "bad_mcc: mcc 'x' is not 4 digits"
    )


def test_a_code_is_named_once_with_a_detail_per_field() -> None:
    (row,) = validate(records({"account_id": "", "country": " "})).to_pylist()
    assert row["reasons"] == [c.MISSING_REQUIRED]
    assert row["reason_detail"] == (
        "missing_required: required field account_id is empty; "
        "missing_required: required field country is empty"
    )


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"amount": "1e3"},
            "bad_amount_format: amount '1e3' is not a plain decimal with at most 2 places",
        ),
        (
            {"amount": "-1000000000.01"},
            "amount_out_of_range: amount '-1000000000.01' is outside "
            "-1000000000.00 .. 1000000000.00",
        ),
        (
            {"event_time": "2026-02-30T10:00:00Z"},
            "bad_event_time: event_time '2026-02-30T10:00:00Z' is not a valid ISO 8601 "
            "timestamp with offset (2026-11-25T13:45:12Z)",
        ),
        (
            {"event_time": "9999-12-31T23:59:59Z"},
            "event_time_out_of_range: event_time '9999-12-31T23:59:59Z' is outside "
            "1900-01-01T00:00:00Z .. 2999-12-31T23:59:59Z",
        ),
        (
            {"country": "XX"},
            "unknown_country: country 'XX' is not an ISO 3166-1 alpha-2 code",
        ),
        (
            {"channel": "fax"},
            "unknown_channel: channel 'fax' is not card_present, ecommerce, atm, transfer, "
            "direct_debit, mobile",
        ),
        (
            {"description": "é" * 4097},
            "field_too_long: description has 4097 characters, at most 4096 allowed",
        ),
    ],
)
def test_reason_detail_names_the_field_and_the_value(change: dict[str, str], detail: str) -> None:
    assert validate(records(change)).column("reason_detail").to_pylist() == [detail]


def test_accepted_records_have_no_reasons_and_an_empty_detail() -> None:
    validated = validate(records({}))
    assert validated.column("reasons").to_pylist() == [[]]
    assert validated.column("reason_detail").to_pylist() == [""]


def test_random_values_never_raise_and_every_record_is_decided() -> None:
    rng = random.Random(9)
    alphabet = "0123456789-:.TZ +eE,x\"'é\t"
    changes = [
        {
            name: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 34)))
            for name in c.COLUMN_NAMES
            if rng.random() < 0.5
        }
        for _ in range(2000)
    ]
    validated = validate(records(*changes))
    for reasons, detail in zip(
        validated.column("reasons").to_pylist(),
        validated.column("reason_detail").to_pylist(),
        strict=True,
    ):
        assert bool(reasons) == bool(detail)
        assert set(reasons) <= set(c.REASONS)


def test_transactions_have_the_table_schema_typed_values_and_lineage() -> None:
    validated = validate(
        records({"mcc": "", "counterparty_id": " ", "description": None}, {"currency": "XXY"})
    )
    transactions = to_transactions(validated, LINEAGE)
    assert transactions.schema == arrow_schema(TRANSACTIONS)
    (row,) = transactions.to_pylist()
    assert row == {
        **GOOD,
        "transaction_id": "T2",
        "counterparty_id": None,
        "amount": Decimal("10.00"),
        "event_time": datetime(2026, 11, 25, 10, tzinfo=UTC),
        "mcc": None,
        "description": None,
        "source_file": "s3://landing/tx.csv",
        "ingest_id": "ingest-1",
        "line_number": 2,
        "last_line_number": 2,
        "ingested_at": datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC),
        "_rescued": None,
        "warnings": [],
    }


def test_rejected_records_have_the_table_schema_raw_text_and_line_label() -> None:
    validated = validate(records({}, {"currency": "XXY"}))
    rejected = to_rejected(validated, LINEAGE)
    assert rejected.schema == arrow_schema(REJECTED_RECORDS)
    (row,) = rejected.to_pylist()
    assert row == {
        "source_file": "s3://landing/tx.csv",
        "ingest_id": "ingest-1",
        "line_number": 3,
        "last_line_number": 3,
        "raw_line": ",".join(
            {
                **GOOD,
                "transaction_id": "T3",
                "account_id": "***9001",  # sensitive: masked, last four kept
                "counterparty_id": "**",
                "currency": "XXY",
            }.values()
        ),
        "raw_bytes": None,
        "reasons": [c.UNKNOWN_CURRENCY],
        "reason_detail": "line 3: unknown_currency: currency 'XXY' is not an ISO 4217 code",
        "transaction_id": "T3",
        "ingested_at": datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC),
        "rule_version": c.TRANSACTIONS_FEED.rule_version,
    }


def test_tokenized_records_keep_raw_text_bytes_and_line_ranges() -> None:
    quoted = 'T2,A,M,1.00,XXY,2026-11-25T10:00:00Z,settled,atm,6011,DE,"two\nlines"'
    stray = 'T3,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,12" pizza'
    latin1 = b"T4,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,Caf\xe9"
    text = f"{','.join(GOOD.values())}\n{quoted}\n{stray}\n".encode() + latin1 + b"\n"
    validated = validate(tokenize(text, first_line_number=2))
    assert to_transactions(validated, LINEAGE).column("line_number").to_pylist() == [2]
    rejected = sorted(to_rejected(validated, LINEAGE).to_pylist(), key=lambda r: r["line_number"])
    assert [(r["line_number"], r["last_line_number"], r["reasons"]) for r in rejected] == [
        (3, 4, [c.UNKNOWN_CURRENCY]),
        (5, 5, [c.BAD_QUOTING]),
        (6, 6, [c.INVALID_ENCODING]),
    ]
    # account_id and counterparty_id ("A", "M") are sensitive: masked in every rejected record.
    assert [r["raw_line"] for r in rejected[:2]] == [
        quoted.replace("T2,A,M,", "T2,*,*,"),
        stray.replace("T3,A,M,", "T3,*,*,"),
    ]
    assert rejected[0]["reason_detail"].startswith("lines 3-4: unknown_currency: ")
    assert rejected[1]["reason_detail"] == f"line 5: bad_quoting: {c.REASONS[c.BAD_QUOTING]}"
    assert rejected[2]["raw_bytes"] == latin1.replace(b"T4,A,M,", b"T4,*,*,")


def test_add_reason_adds_the_code_once_and_appends_the_detail() -> None:
    validated = validate(records({}, {"currency": "XXY"}, {}))
    once = add_reason(
        validated,
        pa.array([True, True, False]),
        c.DUPLICATE_IN_FILE,
        pa.array(["dup A", "dup B", "never read"]),
    )
    assert once.column("reasons").to_pylist() == [
        [c.DUPLICATE_IN_FILE],
        [c.UNKNOWN_CURRENCY, c.DUPLICATE_IN_FILE],
        [],
    ]
    assert once.column("reason_detail").to_pylist() == [
        "dup A",
        "unknown_currency: currency 'XXY' is not an ISO 4217 code; dup B",
        "",
    ]
    twice = add_reason(
        once, pa.chunked_array([[False, True], [True]]), c.DUPLICATE_IN_FILE, pa.array(["x", "y"])
    )
    assert twice.column("reasons").to_pylist() == [
        [c.DUPLICATE_IN_FILE],
        [c.UNKNOWN_CURRENCY, c.DUPLICATE_IN_FILE],
        [c.DUPLICATE_IN_FILE],
    ]
    assert twice.column("reason_detail").to_pylist()[1:] == [
        "unknown_currency: currency 'XXY' is not an ISO 4217 code; dup B; x",
        "y",
    ]
    assert to_rejected(twice, LINEAGE).schema == arrow_schema(REJECTED_RECORDS)


def test_add_reason_works_on_rejected_records() -> None:
    rejected = to_rejected(validate(records({"currency": "XXY"})), LINEAGE)
    flagged = add_reason(
        rejected, pa.array([True]), c.ALREADY_INGESTED, pa.array(["already_ingested: T2"])
    )
    assert flagged.column("reasons").to_pylist() == [[c.UNKNOWN_CURRENCY, c.ALREADY_INGESTED]]
    assert flagged.column("reason_detail").to_pylist() == [
        "line 2: unknown_currency: currency 'XXY' is not an ISO 4217 code; already_ingested: T2"
    ]
    assert flagged.schema == arrow_schema(REJECTED_RECORDS)


def test_empty_and_sliced_tables_are_validated_like_whole_ones() -> None:
    empty = validate(RECORD_SCHEMA.empty_table())
    assert empty.num_rows == 0
    assert to_transactions(empty, LINEAGE).schema == arrow_schema(TRANSACTIONS)
    assert to_rejected(empty, LINEAGE).num_rows == 0
    whole = records({"event_time": "2026-02-30T10:00:00Z"}, {}, {"currency": "XXY"}, {})
    sliced = validate(whole.slice(1, 2))
    assert sliced.to_pylist() == validate(whole).slice(1, 2).to_pylist()


def test_lineage_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Lineage("f", "i", datetime(2026, 11, 26))
