"""Differential: `tokenize` gives exactly the records of the tokenizer before any line went
through Arrow's CSV reader (issue 19), on generated hostile files and hand-made edge cases.

`reference_tokenize` is that earlier tokenizer: every plain line split by `split_pattern`
and `list_element`, every quote-bearing or undecodable record split in Python
(`_special_records`), where `tokenize` sends plain lines and well-formed quoted records
through Arrow's reader. Mixing them checks that the records still come out in the same order.
"""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from numpy.typing import NDArray

from sluiceway.contract import COLUMN_NAMES, DELIMITER, MAX_RECORD_BYTES
from sluiceway.generate import LINE_ENDINGS, generate_landing_file
from sluiceway.ingest.boundaries import LineIndex, RecordSpan, line_index, quoted_records
from sluiceway.ingest.landing import read_chunk, scan_landing_file
from sluiceway.ingest.parse import (
    CONTRACT_LAYOUT,
    RECORD_SCHEMA,
    RESCUED_TYPE,
    _line_array,
    _lines_with_bad_encoding,
    _special_records,
    tokenize,
)

pytestmark = pytest.mark.unit

FIELD_COUNT = len(COLUMN_NAMES)
BOM = codecs.BOM_UTF8
VALID = b"T1,DE89000001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,hello"
QUOTED = b'T2,A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,"a, ""b""\nc"'


def reference_tokenize(
    data: bytes, first_line_number: int, max_record_bytes: int = MAX_RECORD_BYTES
) -> pa.Table:
    """The tokenizer as it was before plain lines went through Arrow's CSV reader."""
    if not data:
        return RECORD_SCHEMA.empty_table()
    lines = line_index(data)
    spans = quoted_records(data, lines, max_record_bytes, at_end=True).spans
    in_span = np.zeros(len(lines), dtype=bool)
    for span in spans:
        in_span[span.first_line : span.last_line + 1] = True
    bad_encoding = _lines_with_bad_encoding(data, lines)
    plain = ~in_span & ~bad_encoding
    parts = [_reference_plain(data, lines, np.flatnonzero(plain), first_line_number)]
    undecodable = [
        RecordSpan(int(line), int(line)) for line in np.flatnonzero(~in_span & bad_encoding)
    ]
    special = spans + undecodable
    if special:
        parts.append(_special_records(data, lines, special, first_line_number, CONTRACT_LAYOUT))
    return pa.Table.from_batches(parts, RECORD_SCHEMA)


def _reference_plain(
    data: bytes, lines: LineIndex, selected: NDArray[np.int64], first_line_number: int
) -> pa.RecordBatch:
    raw = _line_array(data, lines, selected)
    fields = pc.split_pattern(raw, DELIMITER)
    counts = pc.list_value_length(fields).cast(pa.int32())
    complete = pc.equal(counts, FIELD_COUNT)
    if len(selected) and not pc.all(complete).as_py():
        incomplete = pc.invert(complete)
        size = len(raw.filter(incomplete))
        numbers = pa.array(selected[~complete.to_numpy(False)] + first_line_number, pa.int64())
        return pa.concat_batches(
            [
                _reference_plain(
                    data, lines, selected[complete.to_numpy(False)], first_line_number
                ),
                pa.RecordBatch.from_arrays(
                    [
                        numbers,
                        numbers,
                        raw.filter(incomplete),
                        pa.nulls(size, pa.binary()),
                        counts.filter(incomplete),
                        pa.nulls(size, pa.string()),
                        pc.list_element(fields.filter(incomplete), 0),
                        *[pa.nulls(size, pa.string()) for _ in range(FIELD_COUNT - 1)],
                        pa.nulls(size, RESCUED_TYPE),
                    ],
                    schema=RECORD_SCHEMA,
                ),
            ]
        )
    line_numbers = pa.array(selected + first_line_number, pa.int64())
    return pa.RecordBatch.from_arrays(
        [
            line_numbers,
            line_numbers,
            pa.nulls(len(selected), pa.string()),
            pa.nulls(len(selected), pa.binary()),
            counts,
            pa.nulls(len(selected), pa.string()),
            *[pc.list_element(fields, index) for index in range(FIELD_COUNT)],
            pa.nulls(len(selected), RESCUED_TYPE),
        ],
        schema=RECORD_SCHEMA,
    )


def assert_same_records(data: bytes, first_line_number: int = 2) -> None:
    """Same schema, same rows in the same order, same values (empty strings stay empty)."""
    actual = tokenize(data, first_line_number)
    expected = reference_tokenize(data, first_line_number)
    assert actual.schema == expected.schema
    if actual.equals(expected):
        return
    got, want = actual.to_pylist(), expected.to_pylist()
    assert len(got) == len(want), f"{len(got)} records, expected {len(want)}"
    for index, (row, reference) in enumerate(zip(got, want, strict=True)):
        assert row == reference, f"record {index} differs for data {data[:300]!r}"
    raise AssertionError("tables differ although their rows are equal")


def edge_lines() -> list[bytes]:
    """Lines (without line end) that Arrow's CSV reader could split differently from us."""
    long_field = b"x" * (3 << 20)
    return [
        VALID,
        b",,,,,,,,,,",  # only delimiters: eleven empty strings
        b"T3,,M,,EUR,,settled,,5411,,",  # empty fields, a trailing delimiter as the last
        VALID + b",",  # trailing delimiter: twelve fields
        VALID.replace(b",hello", b""),  # ten fields
        VALID + b",a,b",
        b"",  # blank line
        b"\r",  # blank line with a CR
        b",",
        BOM + VALID,  # BOM at the line start: stripped
        BOM + BOM + VALID,  # only the first one is stripped
        BOM,
        BOM + b",,,,,,,,,,",
        BOM + b"T3,only,three",
        VALID.replace(b"hello", b"he\xef\xbb\xbfllo"),  # a BOM inside a field is content
        VALID.replace(b"T1", b"\xef\xbb\xbfT1").replace(b",DE,", b",\xef\xbb\xbf,"),
        VALID.replace(b"hello", b"caf\xe9"),  # not UTF-8
        b"\xff" + VALID,
        VALID.replace(b"hello", b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),  # multi-byte
        VALID.replace(b"hello", long_field),  # longer than Arrow's default block
        long_field + b",,,,,,,,,,",
        VALID.replace(b"hello", b"Public\rtransport"),  # a stray CR is content
        b"\r" + VALID,
        VALID + b"\r\r",  # CRs before the LF belong to the line end
        VALID + b"\r \r",
        VALID.replace(b"hello", b"a\x00b"),  # NUL
        VALID.replace(b"hello", b" \t spaced \t "),
        VALID.replace(b"hello", b"NULL").replace(b"M1", b"NA").replace(b"EUR", b"null"),
        VALID.replace(b"hello", b"\\,").replace(b"M1", b"\\"),  # no escape character
        VALID.replace(b"hello", b"'single'"),
        QUOTED,  # quote-bearing records between plain runs
        VALID.replace(b"hello", b'12" pizza'),
        b'"T4",A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,x',
        # Quote-bearing records Arrow's reader takes (quoting on), or leaves to Python.
        VALID.replace(b"hello", b'"a\r\nb"'),  # CR LF inside quotes is content
        VALID.replace(b"hello", b'"a\rb"'),  # a lone CR inside quotes: Python
        VALID.replace(b"hello", b'""'),  # a quoted empty field is an empty string
        VALID.replace(b"hello", b'""""'),  # one escaped quote
        VALID.replace(b"T1", b'"T""1"').replace(b",DE,", b',"D,E",'),
        VALID.replace(b"hello", b'"x",extra'),  # twelve fields: Python keeps it whole
        BOM + VALID.replace(b"hello", b'"q"'),  # a BOM before a quoted record: Python
        VALID.replace(b"hello", b'"caf\xe9"'),  # not UTF-8 inside quotes: Python
        VALID.replace(b"hello", b'"unterminated'),
        VALID.replace(b"hello", b'"closed" late'),
    ]


@pytest.mark.parametrize("ending", sorted(LINE_ENDINGS))
def test_each_edge_case_alone_and_between_valid_lines(ending: str) -> None:
    end = LINE_ENDINGS[ending]
    for line in edge_lines():
        for data in (
            line + end,
            line,  # the last line of a chunk may have no line end
            VALID + end + line + end + VALID + end,
            line + end + VALID,
        ):
            # Like read_chunk, a CR-only file is read with LF as its line end.
            assert_same_records(data.replace(b"\r", b"\n") if ending == "cr" else data)


def test_random_mixes_of_edge_cases() -> None:
    lines = [line for line in edge_lines() if len(line) < 1000]
    rng = random.Random(20261206)
    for _ in range(300):
        picked = rng.choices(lines + [VALID] * 10, k=rng.randrange(1, 40))
        ends = [rng.choice((b"\n", b"\r\n", b"\r\r\n")) for _ in picked]
        data = b"".join(line + end for line, end in zip(picked, ends, strict=True))
        if rng.random() < 0.3:
            data = data.rstrip(b"\r\n")
        assert_same_records(data, rng.randrange(2, 10_000))


def test_random_bytes_around_delimiters() -> None:
    """Lines built from the bytes that matter, biased towards the right delimiter count."""
    pieces = [b",", b"a", b"\r", b"\xef\xbb\xbf", b"\xe9", b"\x00", b" ", b'"', b"\xc3\xa9", b""]
    rng = random.Random(7)
    for _ in range(500):
        lines = []
        for _ in range(rng.randrange(1, 20)):
            fields = [
                b"".join(rng.choices(pieces[1:], weights=[20, 1, 1, 1, 1, 3, 1, 2, 5], k=3))
                for _ in range(rng.choice((FIELD_COUNT, FIELD_COUNT, FIELD_COUNT - 1, 12, 1)))
            ]
            lines.append(b",".join(fields))
        data = b"\n".join(lines) + rng.choice((b"\n", b"\r\n", b""))
        assert_same_records(data, 2)


@pytest.mark.parametrize(
    ("seed", "defect_rate", "ending"),
    [(1, 0.0, "lf"), (2, 0.02, "lf"), (3, 0.05, "crlf"), (4, 0.05, "cr"), (5, 0.3, "lf")],
)
def test_generated_hostile_files_chunk_by_chunk(
    tmp_path: Path, seed: int, defect_rate: float, ending: str
) -> None:
    path = tmp_path / "landing.csv"
    generate_landing_file(path, 20_000, seed=seed, defect_rate=defect_rate, line_ending=ending)
    scan = scan_landing_file(str(path), 256 << 10, str(tmp_path / "staging"), MAX_RECORD_BYTES)
    assert len(scan.chunks) > 1
    for chunk in scan.chunks:
        assert_same_records(read_chunk(chunk), chunk.first_line_number)


def test_well_formed_quoted_records_do_not_take_the_python_path(monkeypatch) -> None:
    """The Arrow path is the one taken (the comparisons above would pass without it)."""
    from sluiceway.ingest import parse

    def refuse(*_arguments: object) -> None:
        raise AssertionError("a well-formed quoted record was split in Python")

    data = b"".join(QUOTED.replace(b"T2", b"T%d" % n) + b"\r\n" for n in range(50))
    expected = reference_tokenize(data, 2)
    monkeypatch.setattr(parse, "_special_records", refuse)
    assert tokenize(data, 2).equals(expected)
