"""Differential: the record boundaries `quoted_records` finds with numpy (one-line quoted
fields, two lines joined inside one quoted field, a stray quote inside a field) are the ones
the state machine finds when it visits every quote-bearing line itself, on random hostile
data: same spans, same errors, same undecided line, at the end of the data or not, with small
record caps."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sluiceway.contract import BAD_QUOTING
from sluiceway.ingest import boundaries
from sluiceway.ingest.boundaries import (
    BOM,
    FIELD_COUNT,
    QUOTE,
    QuotedRecords,
    RecordSpan,
    _Machine,
    _Pending,
    line_index,
    quoted_records,
)

pytestmark = pytest.mark.unit

PIECES = [b",", b"a", b"bc", b'"', b'""', b"\r", b"\n", BOM, b" ", b"\xc3\xa9"]
WEIGHTS = [12, 10, 4, 6, 3, 1, 2, 1, 2, 1]


def machine_records(
    data: bytes, max_record_bytes: int, at_end: bool, field_count: int
) -> QuotedRecords:
    """`quoted_records` as it was: the state machine decides every quote-bearing line."""
    lines = line_index(data)
    complete_lines = len(lines) if at_end else lines.terminated
    undecided = complete_lines if complete_lines < len(lines) else None
    quotes = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == QUOTE)
    if not len(quotes):
        return QuotedRecords([], undecided)
    machine = _Machine(
        data, quotes.tolist(), lines.ends.tolist(), max_record_bytes, at_end, field_count
    )
    spans: list[RecordSpan] = []
    resume = 0
    for line in np.unique(np.searchsorted(lines.ends, quotes)).tolist():
        if line < resume:
            continue
        if line >= complete_lines:
            break
        start = int(lines.starts[line])
        if data.startswith(BOM, start):
            start += len(BOM)
        try:
            span = machine.record_at(start, line)
        except _Pending:
            return QuotedRecords(spans, line)
        spans.append(span)
        resume = span.last_line + 1
    return QuotedRecords(spans, undecided)


def field_text(rng: random.Random) -> bytes:
    shape = rng.random()
    if shape < 0.5:
        return b"".join(rng.choices(PIECES[1:3] + PIECES[8:], k=rng.randrange(0, 3)))
    inner = b"".join(rng.choices(PIECES, weights=WEIGHTS, k=rng.randrange(0, 5)))
    if shape < 0.85:  # a quoted field, its quotes doubled or not, maybe over lines
        return b'"' + inner + b'"'
    return inner  # stray bytes: quotes anywhere, CRs, BOMs, line ends


def random_data(rng: random.Random, field_count: int) -> bytes:
    lines = []
    for _ in range(rng.randrange(1, 12)):
        count = rng.choice((field_count, field_count, field_count - 1, field_count + 1, 1))
        line = b",".join(field_text(rng) for _ in range(count))
        lines.append((BOM if rng.random() < 0.05 else b"") + line)
    return b"".join(line + rng.choice((b"\n", b"\n", b"\r\n", b"\r\r\n")) for line in lines)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_shapes_decide_what_the_machine_decides(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(800):
        field_count = rng.choice((FIELD_COUNT, 3))
        data = random_data(rng, field_count)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]  # a block that ends anywhere
        for cap in (1 << 20, rng.randrange(1, 40)):
            for at_end in (True, False):
                lines = line_index(data)
                assert quoted_records(data, lines, cap, at_end, field_count) == machine_records(
                    data, cap, at_end, field_count
                ), (data, cap, at_end, field_count)


def test_the_usual_quoted_records_never_reach_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes are taken (the comparison above would pass without them)."""

    def refuse(*_arguments: object) -> RecordSpan:
        raise AssertionError("the state machine visited a well-formed quoted record")

    monkeypatch.setattr(boundaries._Machine, "record_at", refuse)
    data = (
        b'T1,a,"b, ""c"" d",e\n'  # one quoted field, escaped quotes in it
        b'T2,"",x,y\r\n'  # an empty quoted field, a CR LF line end
        b'\xef\xbb\xbf"T3",a,b,c\n'  # a BOM before an opening quote
        b'T4,a,"line one\n'  # a line end inside a quoted field
        b'line two",c\n'
        b'T5,a,12" pizza,c\n'  # a stray quote inside a field: that line alone is rejected
        b'\xef\xbb\xbfT6,a"b",c,d\n'  # a quote after a field's start, a BOM before the line
        b"T7,a,b,c"
    )
    lines = line_index(data)
    found = quoted_records(data, lines, 1 << 20, True, 4)
    assert found == QuotedRecords(
        [
            RecordSpan(0, 0), RecordSpan(1, 1), RecordSpan(2, 2), RecordSpan(3, 4),
            RecordSpan(5, 5, BAD_QUOTING), RecordSpan(6, 6, BAD_QUOTING),
        ],
        None,
    )  # fmt: skip
