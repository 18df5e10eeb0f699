"""Header by name: the matcher's every outcome, and the tokenizer reading a file by its own
header (reordered, without an optional column, with unknown columns), without Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.errors import LandingFileError
from sluiceway.ingest.header import (
    HeaderLayout,
    contract_layout,
    match_header,
    read_header,
)
from sluiceway.ingest.landing import read_chunk, scan_landing_file
from sluiceway.ingest.parse import tokenize
from sluiceway.ingest.table_rows import Lineage, to_rejected, to_transactions
from sluiceway.ingest.validate import validate

pytestmark = pytest.mark.unit

NAMES = list(c.COLUMN_NAMES)
VALUES = dict(
    zip(
        NAMES,
        "T1,DE89000001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,hello".split(
            ","
        ),
        strict=True,
    )
)
LINEAGE = Lineage("tx.csv", "ingest-1", datetime(2026, 11, 26, tzinfo=UTC))


def layout_of(header: str, matching: str = "by_name", unknown: str = "fail") -> HeaderLayout:
    return read_header("tx.csv", (header + "\n").encode(), c.COLUMNS, matching, unknown)


def header_error(header: bytes | str, matching: str = "by_name", unknown: str = "fail") -> str:
    line = header if isinstance(header, bytes) else (header + "\n").encode()
    with pytest.raises(LandingFileError) as raised:
        read_header("tx.csv", line, c.COLUMNS, matching, unknown)
    return str(raised.value)


# ------------------------------------------------------------------ the matcher


def test_the_contract_header_is_read_in_contract_order() -> None:
    layout = layout_of(c.HEADER_LINE)
    assert layout == contract_layout(c.COLUMNS)
    assert layout.in_contract_order and not layout.reordered and not layout.extra


def test_a_reordered_upper_case_padded_header_is_matched_by_name() -> None:
    shuffled = [NAMES[3], *NAMES[:3], *NAMES[4:]]
    layout = layout_of(",".join(f"  {name.upper()} " for name in shuffled))
    assert layout.field_count == len(NAMES)
    assert [shuffled[position] for position in layout.positions] == NAMES  # type: ignore[index]
    assert layout.reordered and not layout.in_contract_order
    assert layout.outcome() == "the contract's columns matched by name, in another order"


def test_a_missing_optional_column_reads_as_null() -> None:
    layout = layout_of(",".join(name for name in NAMES if name != "mcc"))
    assert layout.missing_optional == ("mcc",)
    assert layout.positions[NAMES.index("mcc")] is None
    assert layout.field_count == len(NAMES) - 1
    assert "missing optional (read as null): mcc" in layout.outcome()


def test_a_missing_required_column_fails_the_file_naming_it() -> None:
    message = header_error(",".join(name for name in NAMES if name != "amount"))
    assert message.startswith("tx.csv: wrong header: line 1 is ")
    assert "required column 'amount' is missing" in message
    assert "Nothing was written" in message


def test_a_column_named_twice_fails_the_file_whatever_its_case() -> None:
    message = header_error(c.HEADER_LINE + ",Currency")
    assert "column 'Currency' appears twice (fields 5 and 12)" in message


@pytest.mark.parametrize("unknown", ["fail", "ignore", "rescue"])
def test_an_unknown_column_follows_the_policy(unknown: str) -> None:
    header = c.HEADER_LINE.replace("mcc,", "loyalty_tier,mcc,")
    if unknown == "fail":
        message = header_error(header, unknown=unknown)
        assert "unknown column 'loyalty_tier' (the feed's unknown_columns is 'fail'" in message
        assert "unexpected: ['loyalty_tier']" in message
        return
    layout = layout_of(header, unknown=unknown)
    assert layout.extra == ((8, "loyalty_tier"),)
    assert layout.field_count == len(NAMES) + 1
    assert layout.positions[NAMES.index("mcc")] == 9
    assert (layout.ignored, layout.rescued) == (
        (layout.extra, ()) if unknown == "ignore" else ((), layout.extra)
    )
    assert ("ignored: loyalty_tier" in layout.outcome()) == (unknown == "ignore")
    assert ("rescued into _rescued: loyalty_tier" in layout.outcome()) == (unknown == "rescue")


def test_strict_accepts_the_contract_header_only() -> None:
    assert layout_of(" " + c.HEADER_LINE, matching="strict").in_contract_order
    reordered = ",".join([NAMES[1], NAMES[0], *NAMES[2:]])
    assert "(same columns, different order)" in header_error(reordered, matching="strict")
    upper = header_error(c.HEADER_LINE.upper(), matching="strict")
    assert f"expected {c.HEADER_LINE!r}" in upper
    assert "unexpected: ['TRANSACTION_ID'" in upper
    assert "unexpected: ['fee']" in header_error(c.HEADER_LINE + ",fee", "strict", "rescue")


def test_a_header_with_a_bom_and_quoted_names_is_matched() -> None:
    line = b"\xef\xbb\xbf" + ",".join(f'"{name}"' for name in NAMES).encode() + b"\r\n"
    assert read_header("tx.csv", line, c.COLUMNS).in_contract_order


def test_a_header_that_is_not_utf8_fails_the_file() -> None:
    assert "tx.csv: header is not UTF-8" in header_error(b"transaction_id,\xff\n")


def test_an_unknown_setting_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="header matching 'loose'"):
        match_header("tx.csv", NAMES, c.COLUMNS, "loose")
    with pytest.raises(ValueError, match="unknown_columns 'keep'"):
        match_header("tx.csv", NAMES, c.COLUMNS, "by_name", "keep")


# ------------------------------------------------------------------ the tokenizer


def line_of(columns: list[str], values: dict[str, str]) -> str:
    return ",".join(values[column] for column in columns)


def contract_records(table: pa.Table) -> list[dict[str, object]]:
    """The records' fields in contract order, as validation and the tables see them."""
    return table.select(["line_number", "field_count", *NAMES]).to_pylist()


def test_a_reordered_file_gives_the_records_of_the_canonical_file() -> None:
    """Plain lines (Arrow's reader), lines Arrow refuses (a stray CR: split in Arrow) and
    quoted records (Python) alike."""
    rows = [
        dict(VALUES),
        {**VALUES, "transaction_id": "T2", "description": "a\rb"},
        {**VALUES, "transaction_id": "T3", "description": '"a, ""b""\nc"'},
        {**VALUES, "transaction_id": "T4", "amount": "1e3"},
    ]
    shuffled = [NAMES[5], *NAMES[:5], *NAMES[6:]][::-1]
    canonical = "".join(line_of(NAMES, row) + "\n" for row in rows).encode()
    reordered = "".join(line_of(shuffled, row) + "\n" for row in rows).encode()
    layout = layout_of(",".join(f" {name.title()}" for name in shuffled))
    expected = tokenize(canonical, 2)
    actual = tokenize(reordered, 2, layout=layout)
    assert contract_records(actual) == contract_records(expected)
    reasons = validate(actual.sort_by("line_number"), field_count=layout.field_count)["reasons"]
    assert reasons.to_pylist() == [[], [], [], [c.BAD_AMOUNT_FORMAT]]


def test_a_rejected_line_of_a_reordered_file_keeps_its_text_as_written() -> None:
    shuffled = NAMES[::-1]
    line = line_of(shuffled, {**VALUES, "currency": "XXY"})
    layout = layout_of(",".join(shuffled))
    validated = validate(tokenize((line + "\n").encode(), 2, layout=layout))
    rejected = to_rejected(validated, LINEAGE, layout)
    # As written, with the sensitive columns masked where this header put them.
    masked = {**VALUES, "currency": "XXY", "account_id": "******0001", "counterparty_id": "**"}
    assert rejected["raw_line"].to_pylist() == [line_of(shuffled, masked)]
    assert rejected["reasons"].to_pylist() == [[c.UNKNOWN_CURRENCY]]


def test_a_file_without_an_optional_column_reads_it_as_null() -> None:
    columns = [name for name in NAMES if name != "mcc"]
    layout = layout_of(",".join(columns))
    text = (
        line_of(columns, VALUES)
        + "\n"
        + line_of(columns, {**VALUES, "transaction_id": "T2", "description": '"x\ny"'})
        + "\n"
    )
    validated = validate(tokenize(text.encode(), 2, layout=layout), field_count=layout.field_count)
    assert validated["reasons"].to_pylist() == [[], []]
    assert validated["mcc"].to_pylist() == [None, None]
    assert to_transactions(validated, LINEAGE)["mcc"].to_pylist() == [None, None]


def test_a_line_has_the_header_s_number_of_fields() -> None:
    columns = [*NAMES, "fee"]
    layout = layout_of(",".join(columns), unknown="ignore")
    text = line_of(NAMES, VALUES) + "\n" + line_of(NAMES, VALUES) + ",0.5\n"
    records = tokenize(text.encode(), 2, layout=layout).sort_by("line_number")
    validated = validate(records, field_count=layout.field_count)
    assert validated["reasons"].to_pylist() == [[c.WRONG_FIELD_COUNT], []]
    assert validated["reason_detail"][0].as_py() == "wrong_field_count: 11 fields, expected 12"
    assert validated["_rescued"].to_pylist() == [None, None]  # ignored: dropped


def test_rescued_columns_are_kept_by_name_on_every_path() -> None:
    columns = ["tier", *NAMES, "fee"]
    layout = layout_of(",".join(columns), unknown="rescue")
    rows = [
        {**VALUES, "tier": "gold", "fee": "0.50"},
        {**VALUES, "transaction_id": "T2", "tier": "", "fee": "1", "description": "a\rb"},
        {**VALUES, "transaction_id": "T3", "tier": '"x,y"', "fee": "2", "description": '"p\nq"'},
    ]
    text = "".join(line_of(columns, row) + "\n" for row in rows).encode()
    validated = validate(tokenize(text, 2, layout=layout), field_count=layout.field_count)
    transactions = to_transactions(validated, LINEAGE)
    assert transactions["transaction_id"].to_pylist() == ["T1", "T2", "T3"]
    assert transactions["_rescued"].to_pylist() == [
        [("tier", "gold"), ("fee", "0.50")],
        [("tier", ""), ("fee", "1")],
        [("tier", "x,y"), ("fee", "2")],
    ]


def test_a_line_with_the_wrong_count_keeps_its_id_only_where_the_id_is_first() -> None:
    first = layout_of(c.HEADER_LINE + ",fee", unknown="ignore")
    last = layout_of(",".join([*NAMES[1:], NAMES[0]]))
    assert tokenize(b"T1,a,b\n", 2, layout=first)["transaction_id"].to_pylist() == ["T1"]
    assert tokenize(b"T1,a,b\n", 2, layout=last)["transaction_id"].to_pylist() == [None]
    assert tokenize(b'"T1",a"\n', 2, layout=last)["transaction_id"].to_pylist() == [None]


def test_the_chunk_planner_cuts_a_wider_file_where_the_tokenizer_does(tmp_path: Path) -> None:
    """A quoted newline in a 12-field file is one record for the planner and the tokenizer
    alike: chunks of any size give the records of one chunk."""
    columns = [*NAMES, "fee"]
    rows = [
        line_of(
            columns,
            {**VALUES, "transaction_id": f"T{i}", "description": '"one\ntwo"', "fee": str(i)},
        )
        for i in range(400)
    ]
    landing = tmp_path / "wide.csv"
    landing.write_text(",".join(columns) + "\n" + "\n".join(rows) + "\n")

    def records(chunk_bytes: int) -> pa.Table:
        scan = scan_landing_file(
            str(landing), chunk_bytes, str(tmp_path), c.MAX_RECORD_BYTES, None, "by_name", "rescue"
        )
        tables = [
            tokenize(read_chunk(chunk), chunk.first_line_number, layout=scan.layout)
            for chunk in scan.chunks
        ]
        return pa.concat_tables(tables).sort_by("line_number")

    small, whole = records(1024), records(1 << 30)
    assert small.equals(whole)
    assert validate(whole, field_count=12)["reasons"].to_pylist() == [[]] * 400
    assert whole["_rescued"][399].as_py() == [("fee", "399")]


def test_every_problem_of_a_header_is_named_at_once() -> None:
    header = ",".join([*(name for name in NAMES if name != "amount"), "amt", "Fee"])
    message = header_error(header)
    assert (
        "required column 'amount' is missing; unknown columns 'amt', 'Fee' "
        "(the feed's unknown_columns is 'fail') (missing: ['amount']; "
        "unexpected: ['amt', 'Fee'])"
    ) in message
