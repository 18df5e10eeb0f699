"""A byte range of a landing file -> records per RFC 4180, with line numbers and raw text.

Why not Spark's CSV reader: it cannot report the raw line or its line number, drops or nulls
what it cannot parse, and cannot split a file with quoted newlines. Here a vectorised path
(numpy + Arrow) handles the plain lines, which are nearly all of them, and Python's `csv`
module handles only lines that contain quotes. A range always starts at a record boundary
(see `landing.plan_chunks`), so quote parity restarts at zero.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.contract import (
    BAD_QUOTING,
    COLUMN_NAMES,
    DELIMITER,
    ENCODING,
    INVALID_ENCODING,
    UNTERMINATED_QUOTE,
)

NEWLINE = 10
QUOTE_BYTE = 34
FIELD_COUNT = len(COLUMN_NAMES)

# The output of the tokenizer: one row per record, fields as text, nothing typed yet.
RECORD_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("raw_line", pa.string()),
        pa.field("field_count", pa.int32()),
        pa.field("parse_error", pa.string()),
        *[pa.field(name, pa.string()) for name in COLUMN_NAMES],
    ]
)


@dataclass(frozen=True)
class _Lines:
    """Physical lines of a range: byte offsets of their starts and ends (end excludes the \\n)."""

    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)


def _split_lines(data: bytes) -> _Lines:
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    ends = newlines if data.endswith(b"\n") else np.append(newlines, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.empty(0, np.int64)
    return _Lines(starts.astype(np.int64), ends.astype(np.int64))


def _record_starts(data: bytes, lines: _Lines) -> tuple[np.ndarray, np.ndarray]:
    """Per line: does a record start here (even quotes before it), and how many quotes it holds."""
    quotes = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == QUOTE_BYTE)
    per_line = np.bincount(np.searchsorted(lines.ends, quotes), minlength=len(lines))
    before = np.cumsum(per_line) - per_line
    return (before % 2) == 0, per_line


def _trim_line_end(text: str) -> str:
    return text[:-1] if text.endswith("\r") else text


def tokenize(data: bytes, first_line_number: int) -> pa.Table:
    """Records of `data` (whole records only); `first_line_number` is the file line of byte 0."""
    if not data:
        return RECORD_SCHEMA.empty_table()
    lines = _split_lines(data)
    starts_record, quotes_per_line = _record_starts(data, lines)
    bad_encoding = _lines_with_bad_encoding(data, lines)
    plain = starts_record & (quotes_per_line == 0) & ~bad_encoding
    parts = [_plain_records(data, lines, np.flatnonzero(plain), first_line_number)]
    special = np.flatnonzero(starts_record & ~plain)
    if len(special):
        parts.append(_special_records(data, lines, starts_record, special, first_line_number))
    return pa.Table.from_batches(parts, RECORD_SCHEMA)


def _lines_with_bad_encoding(data: bytes, lines: _Lines) -> np.ndarray:
    """Which lines are not UTF-8; decoding the whole range first keeps the common case cheap."""
    try:
        data.decode(ENCODING)
        return np.zeros(len(lines), dtype=bool)
    except UnicodeDecodeError:
        pass
    flags = np.zeros(len(lines), dtype=bool)
    for index, (start, end) in enumerate(zip(lines.starts, lines.ends, strict=True)):
        try:
            data[start:end].decode(ENCODING)
        except UnicodeDecodeError:
            flags[index] = True
    return flags


def _line_array(data: bytes, lines: _Lines, selected: np.ndarray) -> pa.StringArray:
    """The selected lines as an Arrow string array, without copying the bytes line by line."""
    offsets = np.append(lines.starts, len(data)).astype(np.int64)
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(lines), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    chosen = whole.take(pa.array(selected, pa.int64())).cast(pa.large_string())
    return pc.utf8_rtrim(chosen, characters="\r\n").cast(pa.string())


def _plain_records(
    data: bytes, lines: _Lines, selected: np.ndarray, first_line_number: int
) -> pa.RecordBatch:
    """Lines without quotes: split on the delimiter in Arrow, no Python loop."""
    raw = _line_array(data, lines, selected)
    fields = pc.split_pattern(raw, DELIMITER)
    counts = pc.list_value_length(fields).cast(pa.int32())
    complete = pc.equal(counts, FIELD_COUNT)
    if len(selected) and not pc.all(complete).as_py():
        return pa.concat_batches(
            [
                _plain_records(data, lines, selected[complete.to_numpy(False)], first_line_number),
                _incomplete_records(
                    raw.filter(pc.invert(complete)),
                    fields.filter(pc.invert(complete)),
                    counts.filter(pc.invert(complete)),
                    selected[~complete.to_numpy(False)] + first_line_number,
                ),
            ]
        )
    # raw_line stays null here: for a plain line it is exactly the fields joined by commas
    # (see validate.raw_text), and not shipping it halves what crosses into the JVM.
    return pa.RecordBatch.from_arrays(
        [
            pa.array(selected + first_line_number, pa.int64()),
            pa.nulls(len(selected), pa.string()),
            counts,
            pa.nulls(len(selected), pa.string()),
            *[pc.list_element(fields, index) for index in range(FIELD_COUNT)],
        ],
        schema=RECORD_SCHEMA,
    )


def _incomplete_records(
    raw: pa.Array, fields: pa.Array, counts: pa.Array, line_numbers: np.ndarray
) -> pa.RecordBatch:
    """Lines with the wrong number of fields keep only their first field (the transaction id)."""
    size = len(raw)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(line_numbers, pa.int64()),
            raw,
            counts,
            pa.nulls(size, pa.string()),
            pc.list_element(fields, 0),
            *[pa.nulls(size, pa.string()) for _ in range(FIELD_COUNT - 1)],
        ],
        schema=RECORD_SCHEMA,
    )


def _special_records(
    data: bytes,
    lines: _Lines,
    starts_record: np.ndarray,
    special: np.ndarray,
    first_line_number: int,
) -> pa.RecordBatch:
    """Records with quotes, quoted newlines or bad bytes: Python's csv module, one at a time."""
    record_start_lines = np.flatnonzero(starts_record)
    next_start = np.searchsorted(record_start_lines, special, side="right")
    rows: list[dict[str, object]] = []
    for line_index, following in zip(special, next_start, strict=True):
        last_line = (
            record_start_lines[following] - 1
            if following < len(record_start_lines)
            else len(lines) - 1
        )
        closed = following < len(record_start_lines) or _quotes_balanced(
            data, lines.starts[line_index], lines.ends[last_line]
        )
        chunk = data[lines.starts[line_index] : lines.ends[last_line]]
        rows.append(_parse_record(chunk, int(line_index) + first_line_number, closed))
    return pa.RecordBatch.from_pylist(rows, schema=RECORD_SCHEMA)


def _quotes_balanced(data: bytes, start: int, end: int) -> bool:
    return data.count(b'"', start, end) % 2 == 0


def _parse_record(chunk: bytes, line_number: int, closed: bool) -> dict[str, object]:
    record: dict[str, object] = {"line_number": line_number}
    try:
        text = _trim_line_end(chunk.decode(ENCODING))
    except UnicodeDecodeError:
        record.update(
            raw_line=chunk.decode(ENCODING, errors="replace"), parse_error=INVALID_ENCODING
        )
        return record
    record["raw_line"] = text
    if not closed:
        record["parse_error"] = UNTERMINATED_QUOTE
        return record
    try:
        parsed = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        record["parse_error"] = BAD_QUOTING
        return record
    if len(parsed) != 1:
        record["parse_error"] = BAD_QUOTING
        return record
    fields = parsed[0]
    record["field_count"] = len(fields)
    if fields:
        record[COLUMN_NAMES[0]] = fields[0]
    if len(fields) == FIELD_COUNT:
        record.update(zip(COLUMN_NAMES, fields, strict=True))
    return record
