"""Sensitive values of rejected records masked as the logs mask them (issue 21 item 4); no Spark.

The contract's sensitive columns (account_id, counterparty_id) must not survive in any column
of a rejected record, whatever the shape of the line; reason codes and line numbers stay what
the rules said.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.ingest import masking
from sluiceway.ingest.header import match_header
from sluiceway.ingest.masking import mask_accounts, mask_record_text, masked_positions
from sluiceway.ingest.parse import split_fields, tokenize
from sluiceway.ingest.reasons import accepted_mask
from sluiceway.ingest.table_rows import Lineage, to_rejected
from sluiceway.ingest.validate import validate
from sluiceway.logs import mask_account

pytestmark = pytest.mark.unit

LINEAGE = Lineage("tx.csv", "ingest-1", datetime(2026, 11, 26, tzinfo=UTC))
TAIL = "EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE"


def line(number: int, amount: str = "1.00", text: str = "x") -> str:
    return f"T{number},DE8900000003700000{number:04d},CP00000000{number:04d},{amount},{TAIL},{text}"


def sensitive_values(number: int) -> tuple[str, str]:
    return f"DE8900000003700000{number:04d}", f"CP00000000{number:04d}"


def test_the_arrow_mask_is_the_logs_mask() -> None:
    values = ["", "1", "1234", "12345", "DE89000000037000000001", "ÄÖÜ\u200bßé12", "a\"b,c'd"]
    masked = mask_accounts(pa.array([*values, None])).to_pylist()
    assert masked == [*(mask_account(value) for value in values), None]
    assert masked[4] == "******************0001"


@pytest.mark.parametrize(
    ("field_count", "positions"),
    [(11, {1, 2}), (12, {1, 2, 3}), (13, {1, 2, 3, 4}), (10, {0, 1, 2}), (2, {0, 1}), (1, {0})],
)
def test_a_wrong_field_count_masks_every_position_a_sensitive_value_could_have_moved_to(
    field_count: int, positions: set[int]
) -> None:
    assert masked_positions(field_count) == positions


def test_a_quoted_sensitive_field_stays_quoted_and_parses_to_the_masked_value() -> None:
    text = line(2, amount="1.0.0").replace("DE89000000037000000002", '"DE8900000003700000""0,2"')
    masked = mask_record_text(text)
    fields = split_fields(masked)
    assert len(fields) == len(c.COLUMNS)
    assert fields[1] == mask_account('DE8900000003700000"0,2') == '******************"0,2'
    assert fields[2] == "**********0002"
    assert fields[0] == "T2" and fields[3] == "1.0.0"


def rejected_of(data: bytes) -> tuple[pa.Table, pa.Table]:
    validated = validate(tokenize(data, first_line_number=2))
    unmasked = validated.filter(pa.compute.invert(accepted_mask(validated)))
    return unmasked, to_rejected(validated, LINEAGE)


def test_no_sensitive_value_survives_in_any_column_whatever_the_shape() -> None:
    lines = [
        line(2, amount="12.345"),  # bad amount
        line(3) + ",extra",  # one field too many
        f"T4,{sensitive_values(4)[0]}",  # too few
        line(5, text='"never closed'),
        '"' + line(6),  # unterminated quote before the transaction id
        line(7, text='12" pizza'),  # bad quoting
        line(8).replace("DE89", "DE89\u200b"),  # bad identifier in account_id
        line(9).replace("CP00", " CP00"),  # edge space in counterparty_id
        line(10).replace("EUR", "XXY").replace(sensitive_values(10)[0], '"DE89000000037000000010"'),
        line(11, text='"two\nlines"').replace("1.00", "1e3"),
        line(13, amount="-") + "\r",  # CRLF
    ]
    data = ("\n".join(lines) + "\n").encode() + line(14).encode().replace(b"DE89", b"DE\xc9")
    data += b"\n"
    unmasked, rejected = rejected_of(data)
    assert rejected.num_rows == 12
    numbers = [*range(2, 12), 13, 14]
    secrets = [value for number in numbers for value in sensitive_values(number)]
    secrets[-2] = "DE\ufffd" + secrets[-2][4:]  # line 14 holds a bad byte, not "DE89"
    for name in rejected.column_names:
        for value in rejected.column(name).to_pylist():
            shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            for secret in secrets:
                assert secret[:-4] not in shown, (name, value)
    assert rejected["line_number"].to_pylist() == unmasked["line_number"].to_pylist()
    assert rejected["last_line_number"].to_pylist() == unmasked["last_line_number"].to_pylist()
    assert rejected["reasons"].to_pylist() == unmasked["reasons"].to_pylist()
    raw = dict(
        zip(rejected["line_number"].to_pylist(), rejected["raw_line"].to_pylist(), strict=True)
    )
    assert raw[2] == line(2, amount="12.345").replace("DE8900000003700000", "*" * 18).replace(
        "CP00000000", "*" * 10
    )
    assert raw[10].startswith('T10,"******************0010",**********0010,')


def test_a_line_that_is_not_utf8_keeps_no_original_byte_of_its_sensitive_fields() -> None:
    original = line(2).replace("DE89", "D\xc9").encode("latin-1")
    _, rejected = rejected_of(original + b"\n")
    (row,) = rejected.to_pylist()
    assert row["reasons"] == [c.INVALID_ENCODING]
    # The bad byte is one character of the account: 20 characters, the last four kept.
    assert (
        row["raw_bytes"]
        == line(2).replace("DE8900000003700000", "*" * 16).replace("CP00000000", "*" * 10).encode()
    )
    assert row["raw_line"] == row["raw_bytes"].decode()


def test_a_bad_byte_among_the_kept_characters_stays_in_raw_bytes_only_escaped_in_raw_line() -> None:
    original = line(2).encode().replace(b"0002,CP", b"00\xff2,CP")
    _, rejected = rejected_of(original + b"\n")
    (row,) = rejected.to_pylist()
    assert b"\xff" in row["raw_bytes"] and "00\\xff2,**" in row["raw_line"]
    assert b"DE89" not in row["raw_bytes"]


def test_reason_details_quote_sensitive_values_masked() -> None:
    lines = [line(2).replace("DE89", " DE89"), line(3).replace("CP00", "CP\u200b00")]
    _, rejected = rejected_of(("\n".join(lines) + "\n").encode())
    assert [detail for detail in rejected["reason_detail"].to_pylist()] == [
        "line 2: bad_identifier: account_id '*******************0002' starts or ends with a space",
        "line 3: bad_identifier: counterparty_id '***********0003' holds U+200B (a control, "
        "invisible or non-plain space character)",
    ]


def test_plain_rejected_lines_are_masked_without_python_per_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nearly all rejected records (plain, whatever their field count) are masked in Arrow."""

    def refuse(text: str, blob: bytes | None) -> None:
        raise AssertionError(f"masked in Python: {text!r}")

    monkeypatch.setattr(masking, "_mask_odd_record", refuse)
    lines = [line(2, amount="x"), line(3) + ",extra", "T4,DE8900000003700000"]
    _, rejected = rejected_of(("\n".join(lines) + "\n").encode())
    assert rejected["raw_line"].to_pylist() == [
        line(2, amount="x").replace("DE8900000003700000", "*" * 18).replace("CP00000000", "*" * 10),
        # Twelve fields: position 3 (the amount) may hold a shifted counterparty_id.
        line(3, amount="****")
        .replace("DE8900000003700000", "*" * 18)
        .replace("CP00000000", "*" * 10)
        + ",extra",
        "**," + "*" * 14 + "0000",
    ]
    assert rejected["transaction_id"].to_pylist() == ["T2", "T3", "**"]


def test_a_reordered_header_moves_the_masked_positions_with_the_sensitive_columns() -> None:
    """Raw lines keep the partner's column order, so the mask follows the file's header."""
    names = list(c.COLUMN_NAMES)
    order = [names[-1], *names[:-1]]  # description first: every column one place later
    layout = match_header("tx.csv", order, c.COLUMNS)
    assert masked_positions(len(order), layout) == {2, 3}

    def reordered(number: int, amount: str = "1.00") -> str:
        fields = split_fields(line(number, amount=amount))
        return ",".join([fields[-1], *fields[:-1]])

    data = f"{reordered(2, amount='12.345')}\n{reordered(3)},extra\n".encode()
    validated = validate(tokenize(data, 2, layout=layout), field_count=layout.field_count)
    rejected = to_rejected(validated, LINEAGE, layout)
    raw = rejected["raw_line"].to_pylist()
    assert rejected["reasons"].to_pylist() == [["bad_amount_format"], ["wrong_field_count"]]
    for number, text in zip((2, 3), raw, strict=True):
        for secret in sensitive_values(number):
            assert secret[:-4] not in text and secret[-4:] in text, text
    assert raw[0].startswith("x,T2,******************0002,**********0002,12.345,")
