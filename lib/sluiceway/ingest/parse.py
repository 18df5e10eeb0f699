"""A byte range of a landing file -> records per RFC 4180, with line numbers and raw text.

Why not Spark's CSV reader: it cannot report the raw line or its line number, drops or nulls
what it cannot parse, and cannot split a file with quoted newlines. Here record boundaries
come from `boundaries.quoted_records` (the same rules the chunk planner uses, so a range
always starts and ends on a record boundary); lines without quotes, nearly all of them, are
split in Arrow without a Python loop, and only quote-bearing records are split in Python.
"""

from __future__ import annotations

import codecs

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.contract import (
    COLUMN_NAMES,
    DELIMITER,
    ENCODING,
    INVALID_ENCODING,
    MAX_RECORD_BYTES,
    QUOTE,
)
from sluiceway.ingest.boundaries import (
    BOM,
    LineIndex,
    RecordSpan,
    line_index,
    quoted_records,
    starts_with_bom,
)

FIELD_COUNT = len(COLUMN_NAMES)
DECODE_WINDOW = 64 * 1024

# The output of the tokenizer: one row per record, fields as text, nothing typed yet.
# `raw_line` is null for plain lines (it is the fields joined by commas, see
# table_rows.raw_text); `raw_bytes` holds the original bytes of a line that is not UTF-8.
RECORD_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("last_line_number", pa.int64(), nullable=False),
        pa.field("raw_line", pa.string()),
        pa.field("raw_bytes", pa.binary()),
        pa.field("field_count", pa.int32()),
        pa.field("parse_error", pa.string()),
        *[pa.field(name, pa.string()) for name in COLUMN_NAMES],
    ]
)


def tokenize(
    data: bytes, first_line_number: int, max_record_bytes: int = MAX_RECORD_BYTES
) -> pa.Table:
    """Records of `data` (whole records only); `first_line_number` is the file line of byte 0.

    Every physical line of `data` is covered by exactly one record.
    """
    if not data:
        return RECORD_SCHEMA.empty_table()
    lines = line_index(data)
    spans = quoted_records(data, lines, max_record_bytes, at_end=True).spans
    in_span = np.zeros(len(lines), dtype=bool)
    for span in spans:
        in_span[span.first_line : span.last_line + 1] = True
    bad_encoding = _lines_with_bad_encoding(data, lines)
    plain = ~in_span & ~bad_encoding
    parts = [_plain_records(data, lines, np.flatnonzero(plain), first_line_number)]
    undecodable = [
        RecordSpan(int(line), int(line)) for line in np.flatnonzero(~in_span & bad_encoding)
    ]
    special = spans + undecodable
    if special:
        parts.append(_special_records(data, lines, special, first_line_number))
    return pa.Table.from_batches(parts, RECORD_SCHEMA)


def _lines_with_bad_encoding(data: bytes, lines: LineIndex) -> NDArray[np.bool_]:
    """Which lines are not UTF-8: decode from each bad line's successor on, without copies.

    A multi-byte character never spans an LF, so restarting at a line start is exact, and
    every byte is decoded once whatever the number of bad lines.
    """
    flags = np.zeros(len(lines), dtype=bool)
    try:
        data.decode(ENCODING)
        return flags
    except UnicodeDecodeError as error:
        position = int(lines.starts[np.searchsorted(lines.ends, error.start)])
    view = memoryview(data)
    # Windows keep each decode call short: the decoder sizes its output by its input.
    while position < len(data):
        window = view[position : position + DECODE_WINDOW]
        try:
            _text, consumed = codecs.utf_8_decode(window, "strict", False)
        except UnicodeDecodeError as error:
            line = int(np.searchsorted(lines.ends, position + error.start))
            flags[line] = True
            if line + 1 >= len(lines):
                break
            position = int(lines.starts[line + 1])
            continue
        if consumed == 0:  # an incomplete character at the very end of the data
            line = int(np.searchsorted(lines.ends, position))
            flags[min(line, len(lines) - 1)] = True
            break
        position += consumed
    return flags


def _line_array(data: bytes, lines: LineIndex, selected: NDArray[np.int64]) -> pa.StringArray:
    """The selected lines as an Arrow string array, without copying the bytes line by line;
    without line end or leading BOM, which belong to the line, not to its fields."""
    offsets = np.append(lines.starts, len(data)).astype(np.int64)
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(lines), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    chosen = whole.take(pa.array(selected, pa.int64())).cast(pa.large_string())
    text = pc.utf8_rtrim(chosen, characters="\r\n").cast(pa.string())
    buffer = np.frombuffer(data, dtype=np.uint8)
    marked = starts_with_bom(buffer, lines.starts[selected], lines.ends[selected])
    if not marked.any():
        return text
    mask = pa.array(marked)
    return pc.replace_with_mask(text, mask, pc.utf8_slice_codeunits(text.filter(mask), 1))


def _plain_records(
    data: bytes, lines: LineIndex, selected: NDArray[np.int64], first_line_number: int
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
        ],
        schema=RECORD_SCHEMA,
    )


def _incomplete_records(
    raw: pa.Array, fields: pa.Array, counts: pa.Array, line_numbers: NDArray[np.int64]
) -> pa.RecordBatch:
    """Lines with the wrong number of fields keep only their first field (the transaction id)."""
    size = len(raw)
    numbers = pa.array(line_numbers, pa.int64())
    return pa.RecordBatch.from_arrays(
        [
            numbers,
            numbers,
            raw,
            pa.nulls(size, pa.binary()),
            counts,
            pa.nulls(size, pa.string()),
            pc.list_element(fields, 0),
            *[pa.nulls(size, pa.string()) for _ in range(FIELD_COUNT - 1)],
        ],
        schema=RECORD_SCHEMA,
    )


def _special_records(
    data: bytes,
    lines: LineIndex,
    spans: list[RecordSpan],
    first_line_number: int,
) -> pa.RecordBatch:
    """Records with quotes, quoted newlines or bad bytes: split in Python, one at a time."""
    rows = [
        _parse_record(
            data[lines.starts[span.first_line] : lines.ends[span.last_line]],
            span,
            first_line_number,
        )
        for span in spans
    ]
    return pa.RecordBatch.from_pylist(rows, schema=RECORD_SCHEMA)


def split_fields(text: str) -> list[str]:
    """The fields of a record that `boundaries` found well-formed: quotes are only around
    whole fields and every quoted field closes, so no check is left to make here. Unlike
    `csv`, a CR inside a field is content, as it is on lines without quotes."""
    fields: list[str] = []
    position, size = 0, len(text)
    while True:
        if position < size and text[position] == QUOTE:
            parts, start = [], position + 1
            while True:
                closing = text.index(QUOTE, start)
                parts.append(text[start:closing])
                if text.startswith(QUOTE, closing + 1):
                    parts.append(QUOTE)
                    start = closing + 2
                    continue
                break
            fields.append("".join(parts))
            position = closing + 2  # past the quote and the delimiter after it
            if closing + 1 >= size:
                return fields
            continue
        comma = text.find(DELIMITER, position)
        if comma == -1:
            fields.append(text[position:])
            return fields
        fields.append(text[position:comma])
        position = comma + 1


def _first_field(text: str) -> str | None:
    """The transaction id of a record that could not be parsed, when it is plainly there."""
    if text.startswith('"'):
        return None
    return text.split(DELIMITER, 1)[0]


def _parse_record(chunk: bytes, span: RecordSpan, first_line_number: int) -> dict[str, object]:
    record: dict[str, object] = {
        "line_number": span.first_line + first_line_number,
        "last_line_number": span.last_line + first_line_number,
    }
    chunk = chunk.rstrip(b"\r").removeprefix(BOM)
    try:
        text = chunk.decode(ENCODING)
    except UnicodeDecodeError:
        text = chunk.decode(ENCODING, errors="backslashreplace")
        record.update(
            raw_line=text,
            raw_bytes=chunk,
            parse_error=INVALID_ENCODING,
            transaction_id=_first_field(text),
        )
        return record
    record["raw_line"] = text
    if span.error is not None:
        record.update(parse_error=span.error, transaction_id=_first_field(text))
        return record
    fields = split_fields(text)
    record["field_count"] = len(fields)
    if fields:
        record[COLUMN_NAMES[0]] = fields[0]
    if len(fields) == FIELD_COUNT:
        record.update(zip(COLUMN_NAMES, fields, strict=True))
    return record
