"""The tokenizer: RFC 4180 cases, line numbers and raw text, without Spark."""

import pytest

from sluiceway import contract as c
from sluiceway.ingest.parse import tokenize

pytestmark = pytest.mark.unit

VALID = "T1,DE89000001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,hello"


def records(text: bytes, first_line: int = 2) -> list[dict]:
    return sorted(tokenize(text, first_line).to_pylist(), key=lambda r: r["line_number"])


def test_plain_line_is_split_into_contract_fields():
    (record,) = records(VALID.encode() + b"\n")
    assert record["line_number"] == 2
    assert record["raw_line"] is None  # rebuilt from the fields by validate.raw_text
    assert record["field_count"] == 11
    assert [record[name] for name in c.COLUMN_NAMES] == VALID.split(",")


def test_quoted_field_keeps_commas_quotes_and_newlines():
    line = 'T2,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,"a, ""b""\nc"\n'
    (record,) = records(line.encode())
    assert record["description"] == 'a, "b"\nc'
    assert record["raw_line"] == line.rstrip("\n")
    assert record["parse_error"] is None


def test_line_numbers_count_physical_lines_after_a_multiline_record():
    text = (
        'T1,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,"one\ntwo\nthree"\n'
        + VALID.replace("T1", "T9")
        + "\n"
    )
    first, second = records(text.encode(), first_line=2)
    assert (first["line_number"], second["line_number"]) == (2, 5)
    assert second["transaction_id"] == "T9"


def test_crlf_line_endings_are_not_part_of_the_values():
    (record,) = records(VALID.encode() + b"\r\n")
    assert record["description"] == "hello"


def test_missing_final_newline_still_yields_the_last_record():
    _, second = records((VALID + "\n" + VALID.replace("T1", "T2")).encode())
    assert second["transaction_id"] == "T2"


def test_wrong_field_count_keeps_the_transaction_id_and_raw_text():
    (record,) = records(b"T3,only,three\n")
    assert record["field_count"] == 3
    assert record["transaction_id"] == "T3"
    assert record["amount"] is None
    assert record["raw_line"] == "T3,only,three"


def test_blank_line_is_a_record_with_one_empty_field():
    _, blank, _ = records(f"{VALID}\n\n{VALID}\n".encode())
    assert blank["field_count"] == 1
    assert blank["line_number"] == 3


def test_invalid_utf8_line_is_flagged_and_kept_with_replacement_characters():
    good, bad = records(VALID.encode() + b"\n" + VALID.replace("hello", "caf").encode() + b"\xe9\n")
    assert good["parse_error"] is None
    assert bad["parse_error"] == c.INVALID_ENCODING
    assert bad["raw_line"].endswith("caf\ufffd")


def test_unterminated_quote_at_end_of_file_is_one_record():
    (good, bad) = records(f'{VALID}\nT4,A,"never closed\nmore text\n'.encode())
    assert good["parse_error"] is None
    assert bad["parse_error"] == c.UNTERMINATED_QUOTE
    assert bad["raw_line"] == 'T4,A,"never closed\nmore text'


def test_text_after_a_closing_quote_is_bad_quoting():
    (record,) = records(b'T5,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,"x"y\n')
    assert record["parse_error"] == c.BAD_QUOTING


def test_empty_range_gives_no_records():
    assert tokenize(b"", 2).num_rows == 0
