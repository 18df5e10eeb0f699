"""The tokenizer: RFC 4180 cases, line numbers and raw text, without Spark."""

import random

import pytest

from sluiceway import contract as c
from sluiceway.ingest import parse
from sluiceway.ingest.parse import tokenize

pytestmark = pytest.mark.unit

VALID = "T1,DE89000001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,hello"


def records(text: bytes, first_line: int = 2) -> list[dict]:
    return sorted(tokenize(text, first_line).to_pylist(), key=lambda r: r["line_number"])


def test_plain_line_is_split_into_contract_fields():
    (record,) = records(VALID.encode() + b"\n")
    assert record["line_number"] == 2
    assert record["raw_line"] is None  # rebuilt from the fields by table_rows.raw_text
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


def test_invalid_utf8_line_is_flagged_and_keeps_its_original_bytes():
    latin1 = VALID.replace("hello", "caf").encode() + b"\xe9"
    good, bad = records(VALID.encode() + b"\n" + latin1 + b"\n")
    assert good["parse_error"] is None
    assert bad["parse_error"] == c.INVALID_ENCODING
    assert bad["raw_bytes"] == latin1
    assert bad["raw_line"].endswith("caf\\xe9")
    assert bad["transaction_id"] == "T1"


@pytest.mark.parametrize(
    "character",
    [
        b"\xed\xa0\x80",  # a surrogate
        b"\xc0\xaf",  # an overlong form
        b"\xe0\x80\x80",
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\xe2\x82",  # a truncated character
        b"\xef\xbf\xbe",  # a noncharacter: valid
        b"\xed\x9f\xbf",  # the last code point before the surrogates: valid
        b"\xf0\x9f\x98\x80",
        b"\x00",
    ],
)
def test_the_fast_utf8_check_agrees_with_the_strict_decoder(character: bytes) -> None:
    data = VALID.encode() + b"\n" + VALID.replace("hello", "x").encode() + character + b"\n"
    try:
        data.decode("utf-8")
        decodes = True
    except UnicodeDecodeError:
        decodes = False
    assert parse._is_utf8(data) is decodes
    _, second = records(data)
    assert (second["parse_error"] == c.INVALID_ENCODING) is not decodes


def test_the_fast_utf8_check_agrees_with_the_strict_decoder_on_random_bytes() -> None:
    rng = random.Random(11)
    leading = [0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5]
    for _ in range(20_000):
        data = bytes(
            rng.choice([rng.randrange(256), rng.randrange(0x80, 0x100), rng.choice(leading)])
            for _ in range(rng.randrange(1, 6))
        )
        try:
            data.decode("utf-8")
            decodes = True
        except UnicodeDecodeError:
            decodes = False
        assert parse._is_utf8(data) is decodes, data


def test_unclosed_quote_costs_only_its_own_line():
    text = f'{VALID}\nT4,A,"never closed\n{VALID.replace("T1", "T5")}\nmore text\n'
    good, bad, next_good, tail = records(text.encode())
    assert good["parse_error"] is None and next_good["parse_error"] is None
    assert (bad["line_number"], bad["last_line_number"]) == (3, 3)
    assert bad["parse_error"] == c.UNTERMINATED_QUOTE
    assert bad["raw_line"] == 'T4,A,"never closed'
    assert next_good["transaction_id"] == "T5"
    assert (tail["line_number"], tail["field_count"]) == (5, 1)


def test_stray_quote_in_an_unquoted_field_is_bad_quoting_for_that_line_only():
    pizza = VALID.replace("T1", "T2").replace("hello", '12" pizza')
    lines = [VALID, pizza, *[VALID.replace("T1", f"T{n}") for n in range(3, 8)]]
    result = records(("\n".join(lines) + "\n").encode())
    assert [r["parse_error"] for r in result] == [None, c.BAD_QUOTING] + [None] * 5
    assert result[1]["transaction_id"] == "T2"
    assert [r["transaction_id"] for r in result[2:]] == [f"T{n}" for n in range(3, 8)]


def test_quote_that_closes_far_away_into_stray_text_costs_only_the_opening_line():
    opened = VALID.replace("T1", "T2").replace("hello", '"starts here')
    later = VALID.replace("T1", "T4").replace("hello", '"quoted, fine"')
    text = "\n".join([opened, VALID.replace("T1", "T3"), later]) + "\n"
    first, second, third = records(text.encode())
    assert (first["parse_error"], first["last_line_number"]) == (c.UNTERMINATED_QUOTE, 2)
    assert second["transaction_id"] == "T3" and second["parse_error"] is None
    assert third["description"] == "quoted, fine"


def test_multiline_record_with_the_wrong_field_count_costs_only_its_first_line():
    opened = 'T2,A,"x\n'
    text = opened + VALID.replace("T1", "T3").replace("hello", 'y",z') + "\n"
    first, second = records(text.encode())
    assert (first["parse_error"], first["line_number"]) == (c.UNTERMINATED_QUOTE, 2)
    assert second["parse_error"] == c.BAD_QUOTING and second["line_number"] == 3


def test_quoted_field_longer_than_csv_default_limit_is_parsed_whole():
    long_text = "x" * 200_000
    line = VALID.replace("hello", f'"{long_text}"')
    (record,) = records(line.encode() + b"\n")
    assert record["parse_error"] is None
    assert record["transaction_id"] == "T1"
    assert record["description"] == long_text


def test_quote_open_beyond_the_record_cap_is_unterminated_and_parsing_resumes():
    opened = VALID.replace("T1", "T2").replace("hello", '"long')
    filler = "\n".join(VALID.replace("T1", f"F{n}") for n in range(50))
    closing = VALID.replace("T1", "T9").replace("hello", 'end"')
    text = f"{opened}\n{filler}\n{closing}\n"
    result = tokenize(text.encode(), 2, max_record_bytes=1000).to_pylist()
    result.sort(key=lambda r: r["line_number"])
    assert result[0]["parse_error"] == c.UNTERMINATED_QUOTE
    assert [r["transaction_id"] for r in result[1:51]] == [f"F{n}" for n in range(50)]
    assert all(r["parse_error"] is None for r in result[1:51])
    assert result[51]["parse_error"] == c.BAD_QUOTING


def test_every_physical_line_is_covered_by_exactly_one_record():
    text = (
        f'{VALID}\nT2,"a\nb",M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,x\n'
        f'T3,12"\n\n"open\n{VALID}'
    ).encode()
    covered = [
        line for r in records(text) for line in range(r["line_number"], r["last_line_number"] + 1)
    ]
    assert covered == list(range(2, 2 + text.count(b"\n") + 1))


def test_text_after_a_closing_quote_is_bad_quoting():
    (record,) = records(b'T5,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,"x"y\n')
    assert record["parse_error"] == c.BAD_QUOTING


def test_empty_range_gives_no_records():
    assert tokenize(b"", 2).num_rows == 0


def test_a_stray_cr_is_content_whether_or_not_the_line_has_quotes():
    plain = VALID.replace("hello", "Public\rtransport")
    quoted = plain.replace(",DE,", ',"DE",')
    first, second = records(f"{plain}\n{quoted}\n".encode())
    assert first["parse_error"] is None and second["parse_error"] is None
    assert first["description"] == second["description"] == "Public\rtransport"


def test_crs_before_the_line_feed_belong_to_the_line_end_with_or_without_quotes():
    plain = VALID + "\r\r"
    quoted = VALID.replace("hello", '"hello"') + "\r\r"
    first, second = records(f"{plain}\n{quoted}\n".encode())
    assert first["description"] == second["description"] == "hello"
    assert second["parse_error"] is None


def test_many_undecodable_lines_cost_linear_time_and_are_each_flagged():
    bad = VALID.replace("hello", "caf").encode() + b"\xe9"
    lines = [bad if n % 100 == 0 else VALID.encode() for n in range(20_000)]
    result = records(b"\n".join(lines) + b"\n\xc3")
    flagged = [r["line_number"] for r in result if r["parse_error"] == c.INVALID_ENCODING]
    assert flagged == [n + 2 for n in range(0, 20_000, 100)] + [20_002]
