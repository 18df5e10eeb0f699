"""Ids with characters no one can see (issue 17): a BOM at a line start is dropped, every other
invisible character, control or edge space in an id is `bad_identifier`; no Spark.

One transaction must have one id: `\\ufeffT1` and `T1` read as two ids let the same
transaction be accepted twice, once per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.ingest.check import check_landing_file
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize
from sluiceway.ingest.validate import validate
from sluiceway.settings import Settings

pytestmark = pytest.mark.unit

BOM = "\ufeff"
ROW = "{id},DE89001,{counterparty},10.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,{text}"


def row(transaction_id: str, text: str = "coffee", counterparty: str = "M1") -> str:
    return ROW.format(id=transaction_id, counterparty=counterparty, text=text)


def records(text: str) -> list[dict[str, Any]]:
    found = tokenize(text.encode(), first_line_number=2).to_pylist()
    return sorted(found, key=lambda record: record["line_number"])


def landing(folder: Path, *lines: str, header: str = c.HEADER_LINE) -> Path:
    path = folder / "tx.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_a_bom_at_the_start_of_a_line_is_not_part_of_the_first_field() -> None:
    lines = [
        BOM + row("T1"),  # plain: split in Arrow
        BOM + row('"T2"'),  # one quoted field: decided in numpy
        BOM + row('"T3"', text='"a ""b"""'),  # several quotes: the state machine
        BOM + row('"T4"', text='"two\nlines"'),  # a quoted newline
    ]
    found = records("\n".join(lines) + "\n")
    assert [(r["line_number"], r["transaction_id"], r["parse_error"]) for r in found] == [
        (2, "T1", None),
        (3, "T2", None),
        (4, "T3", None),
        (5, "T4", None),
    ]
    assert [r["field_count"] for r in found] == [11] * 4
    assert [r["description"] for r in found] == ["coffee", "coffee", 'a "b"', "two\nlines"]


def test_a_bom_inside_a_record_is_content() -> None:
    (record,) = records(row("T1", text=f'"two\n{BOM}lines"') + "\n")
    assert record["description"] == f"two\n{BOM}lines"
    (twice,) = records(BOM + BOM + row("T2") + "\n")
    assert twice["transaction_id"] == BOM + "T2"


def test_a_rejected_line_keeps_its_raw_text_without_the_bom() -> None:
    short, stray = records(f'{BOM}T1,only,three\n{BOM}{row("T2", text="12in pizza")}x"\n')
    assert (short["transaction_id"], short["raw_line"]) == ("T1", "T1,only,three")
    assert stray["parse_error"] == c.BAD_QUOTING
    assert stray["raw_line"] == row("T2", text="12in pizza") + 'x"'


IDS_REJECTED = [
    ("transaction_id", BOM + "T9"),  # a second BOM, or one not at the line start
    ("transaction_id", "T\u200b9"),  # zero-width space
    ("transaction_id", "T\u200c9"),  # zero-width non-joiner
    ("transaction_id", "T\u200d9"),  # zero-width joiner
    ("transaction_id", "T\u20609"),  # word joiner
    ("transaction_id", "T9\u202e"),  # right-to-left override
    ("transaction_id", "T\x009"),  # NUL
    ("transaction_id", "T9\r"),  # a CR (inside quotes)
    ("transaction_id", "T\t9"),
    ("transaction_id", "T\x7f9"),
    ("transaction_id", " T9"),
    ("transaction_id", "T9 "),
    ("transaction_id", "T\u00a09"),  # no-break space
    ("transaction_id", "T9\u3000"),  # ideographic space
    ("account_id", "\t"),
    ("account_id", "DE89\u200b001"),
    ("account_id", " DE89001"),
    ("counterparty_id", "M1 "),
    ("counterparty_id", "M\x011"),
]
IDS_ACCEPTED = [
    ("transaction_id", "T 9"),  # a space inside is a character people see
    ("transaction_id", "TÉ-9/ü"),
    ("account_id", "DE89 0010"),
    ("counterparty_id", " "),  # blank: an optional field left empty
    ("description", f"zero{BOM}width\u200b and\ttab"),  # free text is not an id
]


def reasons(column: str, value: str) -> list[str]:
    """The reasons of a valid record with one value set as is (no tokenizer in between)."""
    fields = dict(zip(c.COLUMN_NAMES, row("T1").split(","), strict=True))
    record = {"line_number": 2, "last_line_number": 2, "field_count": 11, **fields}
    table = pa.Table.from_pylist([{**record, column: value}], schema=RECORD_SCHEMA)
    found: list[str] = validate(table).column("reasons").to_pylist()[0]
    return found


@pytest.mark.parametrize(("column", "value"), IDS_REJECTED, ids=repr)
def test_an_id_with_an_invisible_character_control_or_edge_space_is_bad_identifier(
    column: str, value: str
) -> None:
    assert reasons(column, value) == [c.BAD_IDENTIFIER]


@pytest.mark.parametrize(("column", "value"), IDS_ACCEPTED, ids=repr)
def test_visible_ids_and_free_text_are_accepted(column: str, value: str) -> None:
    assert reasons(column, value) == []


def test_the_detail_names_the_invisible_character_by_code_point(tmp_path: Path) -> None:
    path = landing(tmp_path, row("T\u200b1"), row("T2 "), row("T3", counterparty="M\x001"))
    result = check_landing_file(str(path), Settings(), workers=1)
    assert [line.reason_detail for line in result.first_rejected] == [
        "line 2: bad_identifier: transaction_id 'T\u200b1' holds U+200B "
        "(a control, invisible or non-plain space character)",
        "line 3: bad_identifier: transaction_id 'T2 ' starts or ends with a space",
        "line 4: bad_identifier: counterparty_id '***' holds U+0000 "  # masked: sensitive
        "(a control, invisible or non-plain space character)",
    ]


def test_check_finds_the_id_after_a_bom_repeated_without_it(tmp_path: Path) -> None:
    """The same transaction exported twice, once after a BOM: the second is a duplicate."""
    path = landing(
        tmp_path,
        row("T1"),
        BOM + row("T2"),
        BOM + row("T1", "again"),
        row("T2", "again"),
        header=BOM + c.HEADER_LINE,
    )
    result = check_landing_file(str(path), Settings(), workers=1)
    assert (result.accepted, result.rejected_by_reason) == (2, {c.DUPLICATE_IN_FILE: 2})
    again = result.first_rejected[0]
    assert again.reason_detail == (
        "line 4: duplicate_in_file: transaction_id 'T1' already appears on line 2"
    )
    # Read back from the file, BOM dropped, account and counterparty masked.
    assert again.raw_line == row("T1", "again", counterparty="**").replace("DE89001", "***9001")
