"""Kafka values -> records of the landing contract, one record per value, by the file tokenizer.

A stream has no lines: each Kafka record's value is one landing line in the contract's CSV
form (docs/adr/0013-streaming-ingestion.md). So that values go through exactly the rules
files go through, the values are tokenized as the lines of one buffer, each followed by an
LF (quote-free lines through Arrow's CSV reader, quoted newlines as in files). A record that
starts on a value's first line and ends on its last is exactly what that value alone gives;
every other value (an unclosed quote reaching into the next value, a line end inside or at
the end of the value) is tokenized on its own, so one value can never swallow another. One
trailing LF or CRLF is tolerated and dropped; a value that still reads as several records is
one record whose LFs are content, which the contract rejects as `wrong_field_count`. A
missing (null) value reads as an empty line.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.contract import COLUMN_NAMES, DELIMITER, ENCODING, INVALID_ENCODING
from sluiceway.ingest.header import in_order
from sluiceway.ingest.parse import record_schema, tokenize

LINE_END = b"\n"


def tokenize_values(
    values: pa.Array | pa.ChunkedArray,
    max_record_bytes: int,
    columns: tuple[str, ...] = COLUMN_NAMES,
) -> pa.Table:
    """One record per value, in no particular order; `line_number` is the value's position.

    The result has `parse.record_schema(columns)`; the caller puts the Kafka offsets in its
    place.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.fill_null(values.cast(pa.binary()), b"")
    if not len(values):
        return record_schema(columns).empty_table()
    # Value i covers buffer lines first[i] .. last[i]: one more line per LF it holds.
    breaks = pc.count_substring(values, "\n").to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.arange(len(values), dtype=np.int64) + np.concatenate(([0], np.cumsum(breaks)[:-1]))
    last = first + breaks
    records = tokenize(_each_with_a_line_end(values), 0, max_record_bytes, in_order(columns))
    starts = records["line_number"].to_numpy()
    ends = records["last_line_number"].to_numpy()
    owner = np.searchsorted(first, starts, side="right") - 1
    exact = (starts == first[owner]) & (ends == last[owner])
    alone = np.zeros(len(values), dtype=bool)
    for start, end in zip(starts[~exact].tolist(), ends[~exact].tolist(), strict=True):
        low = np.searchsorted(first, start, side="right") - 1
        high = np.searchsorted(first, end, side="right")
        alone[low:high] = True
    keep = exact & ~alone[owner]
    kept = _numbered(records.filter(pa.array(keep)), owner[keep])
    parts = [kept]
    for position in np.flatnonzero(alone).tolist():
        parts.append(_one_value(values[position].as_py(), position, max_record_bytes, columns))
    return pa.concat_tables(parts)


def _each_with_a_line_end(values: pa.BinaryArray) -> bytes:
    """The values' bytes, each followed by an LF, in one buffer (numpy, no loop)."""
    _validity, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    content = data[offsets[0] : offsets[-1]]
    return np.insert(content, offsets[1:] - offsets[0], ord(LINE_END)).tobytes()


def _numbered(records: pa.Table, positions: NDArray[np.int64]) -> pa.Table:
    """Records numbered by their values' positions in the batch."""
    numbers = pa.array(positions, pa.int64())
    return records.set_column(0, records.schema.field(0), numbers).set_column(
        1, records.schema.field(1), numbers
    )


def _one_value(
    value: bytes, position: int, max_record_bytes: int, columns: tuple[str, ...] = COLUMN_NAMES
) -> pa.Table:
    """A value tokenized alone, without one trailing line end; one record even when the
    tokenizer sees several."""
    value = value[:-2] if value.endswith(b"\r\n") else value.removesuffix(LINE_END)
    records = tokenize(value + LINE_END, 0, max_record_bytes, in_order(columns))
    if records.num_rows == 1:
        return _numbered(records, np.array([position], dtype=np.int64))
    try:
        text, parse_error, raw_bytes = value.decode(ENCODING), None, None
    except UnicodeDecodeError:
        text = value.decode(ENCODING, errors="backslashreplace")
        parse_error, raw_bytes = INVALID_ENCODING, value
    counts = records["field_count"].fill_null(1).to_numpy(zero_copy_only=False)
    # The LFs between the records are content: the fields either side of one are one field.
    field_count = int(counts.sum()) - max(records.num_rows - 1, 0) if records.num_rows else 1
    row = {
        "line_number": position,
        "last_line_number": position,
        "raw_line": text,
        "raw_bytes": raw_bytes,
        "field_count": None if parse_error else field_count,
        "parse_error": parse_error,
        columns[0]: text.split(DELIMITER, 1)[0],
    }
    return pa.Table.from_pylist([row], schema=record_schema(columns))
