"""Kafka values -> records of the landing contract, one record per value, by the file tokenizer.

A stream has no lines: each Kafka record's value is one landing line in the contract's CSV
form (docs/adr/0011-streaming-ingestion.md). So that values go through exactly the rules
files go through, the values are tokenized as if they were the lines of a file: all values
without a CR or LF are joined by LF and tokenized in one call (quote-free ones through
Arrow's CSV reader); a record that came out spanning several values (an unclosed quote
reaching into the next value) and every value holding a CR or LF is tokenized on its own,
so one value can never swallow another. One trailing LF or CRLF is tolerated and dropped;
a value that still reads as several records is one record whose LFs are content, which the
contract rejects as `wrong_field_count`. A missing (null) value reads as an empty line.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.contract import COLUMN_NAMES, ENCODING, INVALID_ENCODING
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize

LINE_END = b"\n"


def tokenize_values(values: pa.Array | pa.ChunkedArray, max_record_bytes: int) -> pa.Table:
    """One record per value, in value order; `line_number` is the value's position.

    The result has `parse.RECORD_SCHEMA`; the caller puts the Kafka offsets in its place.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.fill_null(values.cast(pa.binary()), b"")
    size = len(values)
    if not size:
        return RECORD_SCHEMA.empty_table()
    values = _without_one_line_end(values)
    alone = pc.match_substring_regex(values, "[\r\n]").to_numpy(zero_copy_only=False)
    joined = np.flatnonzero(~alone)
    parts = []
    if len(joined):
        records = _tokenize_joined(values.take(pa.array(joined)), max_record_bytes)
        spanning = _values_of_spanning_records(records)
        kept = records.filter(pa.array(~np.isin(records["line_number"].to_numpy(), spanning)))
        parts.append(_renumbered(kept, joined))
        alone[joined[spanning]] = True
    for position in np.flatnonzero(alone).tolist():
        parts.append(_one_value(values[position].as_py(), position, max_record_bytes))
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table["line_number"]))


def _without_one_line_end(values: pa.BinaryArray) -> pa.BinaryArray:
    """Each value without one trailing LF or CRLF (a producer forwarding lines)."""
    texts = values.to_pylist()
    if not any(text.endswith(LINE_END) for text in texts):
        return values
    trimmed = [
        text[:-2] if text.endswith(b"\r\n") else text[:-1] if text.endswith(LINE_END) else text
        for text in texts
    ]
    return pa.array(trimmed, pa.binary())


def _tokenize_joined(values: pa.BinaryArray, max_record_bytes: int) -> pa.Table:
    """Values without CR or LF, one per line: the tokenizer's records, line i = value i."""
    data = LINE_END.join(values.to_pylist()) + LINE_END
    return tokenize(data, 0, max_record_bytes)


def _values_of_spanning_records(records: pa.Table) -> NDArray[np.int64]:
    """The joined positions covered by records that span more than one value."""
    first = records["line_number"].to_numpy()
    last = records["last_line_number"].to_numpy()
    spans = np.flatnonzero(last > first)
    if not len(spans):
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(first[i], last[i] + 1) for i in spans.tolist()])


def _renumbered(records: pa.Table, positions: NDArray[np.int64]) -> pa.Table:
    """Records of the joined values, numbered by the values' positions in the batch."""
    numbers = pa.array(positions[records["line_number"].to_numpy()], pa.int64())
    return records.set_column(0, RECORD_SCHEMA.field(0), numbers).set_column(
        1, RECORD_SCHEMA.field(1), numbers
    )


def _one_value(value: bytes, position: int, max_record_bytes: int) -> pa.Table:
    """A value tokenized alone; one record even when the tokenizer sees none or several."""
    records = tokenize(value + LINE_END, 0, max_record_bytes)
    if records.num_rows == 1:
        return _renumbered(records, np.array([position], dtype=np.int64))
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
        COLUMN_NAMES[0]: text.split(",", 1)[0],
    }
    return pa.Table.from_pylist([row], schema=RECORD_SCHEMA)
