"""A byte range of a landing file -> records per RFC 4180, with line numbers and raw text.

Why not Spark's CSV reader: it cannot report the raw line or its line number, drops or nulls
what it cannot parse, and cannot split a file with quoted newlines. Here record boundaries
come from `boundaries.quoted_records` (the same rules the chunk planner uses, so a range
always starts and ends on a record boundary); lines without quotes, nearly all of them, go
through Arrow's C++ CSV reader (quoting off) when they hold one field per column, the few
others are split in Arrow without a Python loop, and only quote-bearing records are split in
Python.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from numpy.typing import NDArray

from sluiceway.contract import (
    COLUMN_NAMES,
    COLUMNS,
    DELIMITER,
    ENCODING,
    INVALID_ENCODING,
    MAX_RECORD_BYTES,
    QUOTE,
)
from sluiceway.ingest.boundaries import (
    BOM,
    CARRIAGE_RETURN,
    NEWLINE,
    LineIndex,
    RecordSpan,
    carriage_returns,
    line_index,
    quoted_records,
    starts_with_bom,
)
from sluiceway.ingest.header import RESCUED_COLUMN, HeaderLayout, contract_layout

FIELD_COUNT = len(COLUMN_NAMES)
# A file whose header is the contract's, and every stream: fields in contract order.
CONTRACT_LAYOUT = contract_layout(COLUMNS)
RESCUED_TYPE = pa.map_(pa.string(), pa.string())
DECODE_WINDOW = 64 * 1024
READ_BLOCK_BYTES = 1 << 20


@cache
def record_schema(columns: tuple[str, ...] = COLUMN_NAMES) -> pa.Schema:
    """The output of the tokenizer for a feed's columns: one row per record, fields as text in
    the feed's order, nothing typed yet. `raw_line` is null for plain lines of a file in the
    feed's order (it is the fields joined by commas, see table_rows.raw_text); `raw_bytes`
    holds the original bytes of a line that is not UTF-8; `_rescued` the values of a file's
    unknown columns under `rescue`."""
    return pa.schema(
        [
            pa.field("line_number", pa.int64(), nullable=False),
            pa.field("last_line_number", pa.int64(), nullable=False),
            pa.field("raw_line", pa.string()),
            pa.field("raw_bytes", pa.binary()),
            pa.field("field_count", pa.int32()),
            pa.field("parse_error", pa.string()),
            *[pa.field(name, pa.string()) for name in columns],
            pa.field(RESCUED_COLUMN, RESCUED_TYPE),
        ]
    )


RECORD_SCHEMA = record_schema()


def tokenize(
    data: bytes,
    first_line_number: int,
    max_record_bytes: int = MAX_RECORD_BYTES,
    layout: HeaderLayout = CONTRACT_LAYOUT,
) -> pa.Table:
    """Records of `data` (whole records only); `first_line_number` is the file line of byte 0.

    Every physical line of `data` is covered by exactly one record. A line is complete when
    it has the file's number of fields (`layout`, from its header); its fields come out as
    the contract's columns, in contract order.
    """
    if not data:
        return record_schema(layout.names).empty_table()
    lines = line_index(data)
    spans = quoted_records(data, lines, max_record_bytes, True, layout.field_count).spans
    in_span = np.zeros(len(lines), dtype=bool)
    for span in spans:
        in_span[span.first_line : span.last_line + 1] = True
    bad_encoding = _lines_with_bad_encoding(data, lines)
    plain = ~in_span & ~bad_encoding
    parts = [_plain_records(data, lines, np.flatnonzero(plain), first_line_number, layout)]
    undecodable = [
        RecordSpan(int(line), int(line)) for line in np.flatnonzero(~in_span & bad_encoding)
    ]
    if spans or undecodable:
        parts.append(
            _quoted_records(
                data, lines, spans, undecodable, bad_encoding, first_line_number, layout
            )
        )
    return pa.concat_tables(parts)


def _quoted_records(
    data: bytes,
    lines: LineIndex,
    spans: list[RecordSpan],
    undecodable: list[RecordSpan],
    bad_encoding: NDArray[np.bool_],
    first_line_number: int,
    layout: HeaderLayout,
) -> pa.Table:
    """The quote-bearing records, then the undecodable lines: well-formed quoted records
    through Arrow's CSV reader with quoting on (`_read_quoted`), the others split in Python
    (`_special_records`); same records, same order, as all of them in Python."""
    first = np.array([span.first_line for span in spans], dtype=np.int64)
    last = np.array([span.last_line for span in spans], dtype=np.int64)
    eligible = _readable_quoted(data, lines, spans, first, last, bad_encoding)
    read = _read_quoted(data, lines, first[eligible], last[eligible], first_line_number, layout)
    if read is None:  # Arrow refused one of them (its number of fields): all in Python
        eligible[:] = False
        read = record_schema(layout.names).empty_table()
    rest = [s for s, ok in zip(spans, eligible, strict=True) if not ok] + undecodable
    if not rest:
        return read
    others = pa.Table.from_batches([_special_records(data, lines, rest, first_line_number, layout)])
    if not read.num_rows:  # `rest` is every record, in order
        return others
    positions = np.arange(len(spans) + len(undecodable))
    order = np.argsort(np.concatenate((positions[: len(spans)][eligible],
                                       positions[: len(spans)][~eligible],
                                       positions[len(spans):])), kind="stable")  # fmt: skip
    return pa.concat_tables([read, others]).take(pa.array(order, pa.int64()))


def _slices(data: bytes, begins: NDArray[np.int64], ends: NDArray[np.int64]) -> pa.StringArray:
    """data[begin:end] for each pair (in order, not overlapping), as text, without copying
    them one by one: the even elements of an array cut at every begin and end."""
    bounds = np.column_stack((begins, ends)).ravel().astype(np.int64)
    pieces = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(bounds) - 1,
        [None, pa.py_buffer(bounds.tobytes()), pa.py_buffer(data)],
    )
    wanted = pa.array(np.arange(0, len(bounds), 2, dtype=np.int64))
    return pieces.take(wanted).cast(pa.large_string()).cast(pa.string())


def _readable_quoted(
    data: bytes,
    lines: LineIndex,
    spans: list[RecordSpan],
    first: NDArray[np.int64],
    last: NDArray[np.int64],
    bad_encoding: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Which quote-bearing records Arrow's reader splits as `split_fields` does: well-formed
    (no quoting error), UTF-8, no leading BOM, and no CR but those right before an LF (Arrow
    ends a row at a CR outside quotes; inside them it keeps CR LF as content, as we do)."""
    if not spans:
        return np.zeros(0, dtype=bool)
    well_formed = np.array([span.error is None for span in spans], dtype=bool)
    begins, ends = lines.starts[first], lines.ends[last]
    bad_before = np.concatenate(([0], np.cumsum(bad_encoding)))
    decodable = bad_before[last + 1] == bad_before[first]
    buffer = np.frombuffer(data, dtype=np.uint8)
    returns = carriage_returns(data)
    following = np.minimum(returns + 1, len(buffer) - 1)
    lone = returns[(returns + 1 >= len(buffer)) | (buffer[following] != NEWLINE)]
    no_lone_return = np.searchsorted(lone, ends) == np.searchsorted(lone, begins)
    readable: NDArray[np.bool_] = (
        well_formed & decodable & no_lone_return & ~starts_with_bom(buffer, begins, ends)
    )
    return readable


def _read_quoted(
    data: bytes,
    lines: LineIndex,
    first: NDArray[np.int64],
    last: NDArray[np.int64],
    first_line_number: int,
    layout: HeaderLayout,
) -> pa.Table | None:
    """Well-formed quoted records by Arrow's CSV reader (quoting on, every field text, an
    empty field an empty string), with their raw text; None when Arrow refuses one (a
    record without one field per column, which `split_fields` then keeps whole)."""
    if not len(first):
        return record_schema(layout.names).empty_table()
    begins, ends = lines.starts[first], lines.ends[last]
    view = memoryview(data)
    text = b"".join(
        view[begin:end]
        for begin, end in zip(
            begins.tolist(), np.minimum(ends + 1, len(data)).tolist(), strict=True
        )
    )
    refused = 0

    def refuse(_row: pa_csv.InvalidRow) -> str:
        nonlocal refused
        refused += 1
        return "skip"

    fields = _arrow_fields(
        text, layout.field_count, int((ends - begins).max()), refuse, quoted=True
    )
    if refused or fields.num_rows != len(first):
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    # The raw text, as `_parse_record` keeps it: without the CR of a CR LF line end.
    text_ends = ends - ((ends > begins) & (buffer[np.maximum(ends - 1, 0)] == CARRIAGE_RETURN))
    line_numbers = pa.array(first + first_line_number, pa.int64())
    size = len(first)
    return pa.Table.from_arrays(
        [
            line_numbers,
            pa.array(last + first_line_number, pa.int64()),
            _slices(data, begins, text_ends),
            pa.nulls(size, pa.binary()),
            pa.array(np.full(size, layout.field_count, np.int32)),
            pa.nulls(size, pa.string()),
            *_in_contract_order(fields.columns, layout, size),
        ],
        schema=record_schema(layout.names),
    )


def _lines_with_bad_encoding(data: bytes, lines: LineIndex) -> NDArray[np.bool_]:
    """Which lines are not UTF-8: decode from each bad line's successor on, without copies.

    A multi-byte character never spans an LF, so restarting at a line start is exact, and
    every byte is decoded once whatever the number of bad lines.
    """
    flags = np.zeros(len(lines), dtype=bool)
    if _is_utf8(data):
        return flags
    position = 0
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


def _is_utf8(data: bytes) -> bool:
    """Arrow's UTF-8 check of the whole buffer, without a copy: about 1 ms for a 16 MB chunk,
    where decoding it to find out takes about 10 ms. It rejects what Python's strict decoder
    rejects (overlong forms, surrogates, code points past U+10FFFF; `test_parse`)."""
    bounds = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, bounds, pa.py_buffer(data)]
    )
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


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
    data: bytes,
    lines: LineIndex,
    selected: NDArray[np.int64],
    first_line_number: int,
    layout: HeaderLayout,
) -> pa.Table:
    """Lines without quotes: through Arrow's CSV reader, except the few it would read
    differently from us, which are split on the delimiter; complete records first, in line
    order, then the incomplete ones."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    marked = starts_with_bom(buffer, lines.starts[selected], lines.ends[selected])
    readable = _readable_by_arrow(buffer, carriage_returns(data), lines, selected, marked)
    read, refused = _read_records(data, lines, selected[readable], marked[readable], layout)
    rest = np.sort(np.concatenate((selected[~readable], refused)))
    if not len(rest):
        return _with_line_numbers(read, selected, first_line_number, layout)
    read = _with_line_numbers(
        read, np.setdiff1d(selected[readable], refused), first_line_number, layout
    )
    complete, incomplete = _split_records(data, lines, rest, first_line_number, layout)
    if complete.num_rows:
        read = pa.concat_tables([read, pa.Table.from_batches([complete])])
        read = read.take(pc.sort_indices(read.column("line_number")))
    return pa.concat_tables([read, pa.Table.from_batches([incomplete])])


def _readable_by_arrow(
    buffer: NDArray[np.uint8],
    returns: NDArray[np.int64],
    lines: LineIndex,
    selected: NDArray[np.int64],
    marked: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Which of the selected (quote-free, UTF-8) lines Arrow's CSV reader splits as we do.
    Not: a blank line (Arrow reads a row of empty strings, we one empty field), a line with
    a CR other than one right before the LF (Arrow ends a line at any CR), and a second BOM
    after the line's own (Arrow drops one at the start of its input, we keep it as content).
    `returns`: the offsets of the buffer's CRs.
    """
    starts, ends = lines.starts[selected], lines.ends[selected]
    in_line = np.searchsorted(returns, ends) - np.searchsorted(returns, starts)
    ends_in_cr = (ends > starts) & (buffer[np.maximum(ends - 1, 0)] == CARRIAGE_RETURN)
    content = starts + len(BOM) * marked
    readable: NDArray[np.bool_] = (
        (ends - ends_in_cr > content)
        & (in_line == ends_in_cr)
        & ~starts_with_bom(buffer, content, ends)
    )
    return readable


def _read_records(
    data: bytes,
    lines: LineIndex,
    chosen: NDArray[np.int64],
    marked: NDArray[np.bool_],
    layout: HeaderLayout,
) -> tuple[pa.Table, NDArray[np.int64]]:
    """The file's fields of the chosen lines by Arrow's CSV reader, all as text (an empty field
    stays an empty string), in the file's order, and the lines it refused for their number of
    fields. It reads one buffer of the runs of consecutive lines, each without its leading
    BOM."""
    # By position: the header's own names may differ in case, repeat or be blank.
    names = [f"field_{position}" for position in range(layout.field_count)]
    if not len(chosen):
        return pa.table({name: pa.array([], pa.string()) for name in names}), chosen
    breaks = np.flatnonzero((np.diff(chosen) != 1) | marked[1:]) + 1
    firsts = np.concatenate(([0], breaks))
    lasts = np.append(breaks - 1, len(chosen) - 1)
    begins = lines.starts[chosen[firsts]] + len(BOM) * marked[firsts]
    ends = np.minimum(lines.ends[chosen[lasts]] + 1, len(data))  # with the LF
    view = memoryview(data)
    text = b"".join(
        view[begin:end] for begin, end in zip(begins.tolist(), ends.tolist(), strict=True)
    )
    refused: list[int] = []

    def refuse(row: pa_csv.InvalidRow) -> str:
        if row.number is None:  # only a multi-threaded read leaves it unknown
            return "error"
        refused.append(row.number - 1)  # numbers count rows from 1
        return "skip"

    longest = int((lines.ends[chosen] - lines.starts[chosen]).max())
    fields = _arrow_fields(text, layout.field_count, longest, refuse, quoted=False)
    if fields.num_rows + len(refused) != len(chosen):
        raise RuntimeError(
            f"Arrow's CSV reader read {fields.num_rows} + {len(refused)} refused rows from "
            f"{len(chosen)} lines"
        )
    return fields, chosen[np.array(refused, dtype=np.int64)]


def _arrow_fields(
    text: bytes,
    field_count: int,
    longest: int,
    refuse: Callable[[pa_csv.InvalidRow], str],
    quoted: bool,
) -> pa.Table:
    """The fields of `text`'s records by Arrow's CSV reader, by position, every one text (an
    empty field an empty string); `refuse` is told of each record without `field_count`
    fields. `quoted`: quoting on, a quoted field may hold line ends; else quotes are content.
    The callers send only UTF-8 records."""
    names = [f"field_{position}" for position in range(field_count)]
    return pa_csv.read_csv(
        pa.BufferReader(text),
        read_options=pa_csv.ReadOptions(
            column_names=names,
            # A block holds whole records; bigger blocks are slower (cache).
            block_size=max(READ_BLOCK_BYTES, longest + 2),
            use_threads=False,
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=DELIMITER,
            quote_char=QUOTE if quoted else False,
            double_quote=quoted,
            escape_char=False,
            newlines_in_values=quoted,
            ignore_empty_lines=False,
            invalid_row_handler=refuse,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=False,
        ),
    )


def _with_line_numbers(
    fields: pa.Table, chosen: NDArray[np.int64], first_line_number: int, layout: HeaderLayout
) -> pa.Table:
    """Complete plain records from their fields: one line each; no raw text kept when the
    contract's columns rebuild the line."""
    line_numbers = pa.array(chosen + first_line_number, pa.int64())
    size = len(chosen)
    return pa.Table.from_arrays(
        [
            line_numbers,
            line_numbers,
            _raw_text(fields.columns, layout, size),
            pa.nulls(size, pa.binary()),
            pa.array(np.full(size, layout.field_count, np.int32)),
            pa.nulls(size, pa.string()),
            *_in_contract_order(fields.columns, layout, size),
        ],
        schema=record_schema(layout.names),
    )


def _raw_text(
    fields: list[pa.ChunkedArray] | list[pa.Array], layout: HeaderLayout, size: int
) -> pa.Array | pa.ChunkedArray:
    """Null when the contract's columns rebuild the line (table_rows.raw_text); else the
    file's fields joined as they stood (reordered, with unknown or without optional columns)."""
    if layout.in_contract_order:
        return pa.nulls(size, pa.string())
    return pc.binary_join_element_wise(*fields, DELIMITER)


def _in_contract_order(
    fields: list[pa.ChunkedArray] | list[pa.Array], layout: HeaderLayout, size: int
) -> list[pa.Array | pa.ChunkedArray]:
    """The contract's columns from the file's fields (a missing optional column as nulls),
    then `_rescued`: one map per record of the rescued columns' names and values."""
    columns: list[pa.Array | pa.ChunkedArray] = [
        pa.nulls(size, pa.string()) if position is None else fields[position]
        for position in layout.positions
    ]
    rescued = layout.rescued
    if not rescued or not size:
        return [*columns, pa.nulls(size, RESCUED_TYPE)]
    count = len(rescued)
    values = pa.concat_arrays([_single(fields[position]) for position, _ in rescued])
    # Record r's entries are value r of each rescued column, in the file's order.
    order = (np.arange(count)[None, :] * size + np.arange(size)[:, None]).ravel()
    keys = pa.array([name for _, name in rescued] * size, pa.string())
    offsets = pa.array(np.arange(size + 1, dtype=np.int32) * count)
    maps = pa.MapArray.from_arrays(offsets, keys, values.take(pa.array(order, pa.int64())))
    return [*columns, maps.cast(RESCUED_TYPE)]


def _single(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _split_records(
    data: bytes,
    lines: LineIndex,
    selected: NDArray[np.int64],
    first_line_number: int,
    layout: HeaderLayout,
) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """Plain lines Arrow's reader cannot take, split on the delimiter in Arrow: the complete
    records, and the incomplete ones, which keep only their raw text and, when the file's
    first field is the id, their id."""
    raw = _line_array(data, lines, selected)
    fields = pc.split_pattern(raw, DELIMITER)
    counts = pc.list_value_length(fields).cast(pa.int32())
    complete = pc.equal(counts, layout.field_count)
    incomplete = pc.invert(complete)
    whole = fields.filter(complete)
    numbers = pa.array(selected[complete.to_numpy(False)] + first_line_number, pa.int64())
    size = len(numbers)
    file_fields = [pc.list_element(whole, index) for index in range(layout.field_count)]
    complete_records = pa.RecordBatch.from_arrays(
        [
            numbers,
            numbers,
            raw.filter(complete) if not layout.in_contract_order else pa.nulls(size, pa.string()),
            pa.nulls(size, pa.binary()),
            counts.filter(complete),
            pa.nulls(size, pa.string()),
            *_in_contract_order(file_fields, layout, size),
        ],
        schema=record_schema(layout.names),
    )
    numbers = pa.array(selected[incomplete.to_numpy(False)] + first_line_number, pa.int64())
    size = len(numbers)
    key = (
        pc.list_element(fields.filter(incomplete), 0)
        if layout.key_position() == 0
        else pa.nulls(size, pa.string())
    )
    incomplete_records = pa.RecordBatch.from_arrays(
        [
            numbers,
            numbers,
            raw.filter(incomplete),
            pa.nulls(size, pa.binary()),
            counts.filter(incomplete),
            pa.nulls(size, pa.string()),
            key,
            *[pa.nulls(size, pa.string()) for _ in range(len(layout.names) - 1)],
            pa.nulls(size, RESCUED_TYPE),
        ],
        schema=record_schema(layout.names),
    )
    return complete_records, incomplete_records


def _special_records(
    data: bytes,
    lines: LineIndex,
    spans: list[RecordSpan],
    first_line_number: int,
    layout: HeaderLayout,
) -> pa.RecordBatch:
    """Records with quotes, quoted newlines or bad bytes: split in Python, one at a time."""
    rows = [
        _parse_record(
            data[lines.starts[span.first_line] : lines.ends[span.last_line]],
            span,
            first_line_number,
            layout,
        )
        for span in spans
    ]
    return pa.RecordBatch.from_pylist(rows, schema=record_schema(layout.names))


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


def _first_field(text: str, layout: HeaderLayout) -> str | None:
    """The transaction id of a record that could not be parsed, when it is plainly there."""
    if text.startswith('"') or layout.key_position() != 0:
        return None
    return text.split(DELIMITER, 1)[0]


def _parse_record(
    chunk: bytes, span: RecordSpan, first_line_number: int, layout: HeaderLayout
) -> dict[str, object]:
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
        )
        record[layout.names[0]] = _first_field(text, layout)
        return record
    record["raw_line"] = text
    if span.error is not None:
        record.update({"parse_error": span.error, layout.names[0]: _first_field(text, layout)})
        return record
    fields = split_fields(text)
    record["field_count"] = len(fields)
    if fields and layout.key_position() == 0:
        record[layout.names[0]] = fields[0]
    if len(fields) == layout.field_count:
        record.update(
            (name, None if position is None else fields[position])
            for name, position in zip(layout.names, layout.positions, strict=True)
        )
        if layout.rescued:
            record[RESCUED_COLUMN] = [(name, fields[position]) for position, name in layout.rescued]
    return record
