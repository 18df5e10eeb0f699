"""Sensitive fields of rejected records masked the way the logs mask them (`logs.mask_account`:
the last four characters kept), before anything is stored or printed.

The contract marks the sensitive columns (`Column.sensitive`). A record with one field per
column (no parse error) has its sensitive fields at the contract's positions: those fields are
masked, in `raw_line` too, where a quoted field stays quoted. A record whose fields cannot be
trusted to sit at their positions (a wrong field count, a parse error, bytes that are not
UTF-8) is split leniently (quote-aware, never failing) and every field that could hold a
sensitive value is masked: with `n` fields instead of `N`, a value at position `p` may have
moved to any position from `p - (N - n)` to `p + (n - N)`, so all of those are masked (the
transaction id too, when position 0 is among them). The rule errs on the side of masking;
reason codes and line numbers are never touched.

Plain records (nearly all) and quote-free lines are masked in Arrow; only records the
tokenizer already split in Python (quotes, bad bytes) are masked in Python, one at a time.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway import contract as c
from sluiceway.ingest.header import HeaderLayout, contract_layout
from sluiceway.logs import KEPT_CHARACTERS, MASK, mask_account

# A stream's values, and a file whose header is the contract's, have the contract's order.
CONTRACT_ORDER = contract_layout(c.COLUMNS)
ENCODING_ERRORS = "surrogateescape"  # one stand-in character per byte that is not UTF-8


def mask_accounts(values: pa.Array) -> pa.Array:
    """`mask_account` over a whole string array, in Arrow (null stays null)."""
    length = pc.utf8_length(values)
    kept = pc.if_else(
        pc.greater(length, KEPT_CHARACTERS),
        pc.utf8_slice_codeunits(values, start=-KEPT_CHARACTERS),
        pa.scalar("", values.type),
    )
    stars = pc.binary_repeat(
        pa.scalar(MASK, values.type), pc.subtract(length, pc.utf8_length(kept))
    )
    return pc.binary_join_element_wise(stars, kept, pa.scalar("", values.type))


def masked_positions(field_count: int, layout: HeaderLayout = CONTRACT_ORDER) -> frozenset[int]:
    """Positions (0-based) of a record with `field_count` fields that may hold a sensitive
    value: exactly the header's when the count is right, a wider band when it is not."""
    shift = field_count - layout.field_count
    return frozenset(
        moved
        for position in layout.sensitive_positions()
        for moved in range(position + min(shift, 0), position + max(shift, 0) + 1)
        if 0 <= moved < field_count
    )


def mask_rejected(records: pa.Table, layout: HeaderLayout = CONTRACT_ORDER) -> pa.Table:
    """Rejected records (tokenizer columns) with every sensitive value masked: the sensitive
    fields, `raw_line`, `raw_bytes`, and the transaction id where it may be one. `layout` says
    where the file's header put each column: raw lines keep the file's order."""
    records = records.combine_chunks()
    for name in sorted(layout.sensitive):
        index = records.schema.get_field_index(name)
        records = records.set_column(
            index, records.schema.field(index), mask_accounts(records.column(name))
        )
    raw_line = records.column("raw_line").combine_chunks()
    raw_bytes = records.column("raw_bytes").combine_chunks()
    # A line whose fields cannot be trusted keeps only its first field, in the first column.
    first_column = layout.names[0]
    transaction_id = records.column(first_column).combine_chunks()
    has_text = pc.is_valid(raw_line).to_numpy(zero_copy_only=False)
    quoted = pc.match_substring(raw_line, c.QUOTE).fill_null(False).to_numpy(zero_copy_only=False)
    undecodable = pc.is_valid(raw_bytes).to_numpy(zero_copy_only=False)
    in_python = has_text & (quoted | undecodable)
    in_arrow = has_text & ~in_python
    id_masked = np.zeros(records.num_rows, dtype=bool)
    if in_arrow.any():
        rows = np.flatnonzero(in_arrow)
        lines, first_masked = _mask_plain_lines(raw_line.take(pa.array(rows, pa.int64())), layout)
        raw_line = _put(raw_line, rows, lines)
        id_masked[rows[first_masked]] = True
    if in_python.any():
        rows = np.flatnonzero(in_python)
        taken = pa.array(rows, pa.int64())
        masked = [
            _mask_odd_record(text, blob, layout)
            for text, blob in zip(
                raw_line.take(taken).to_pylist(), raw_bytes.take(taken).to_pylist(), strict=True
            )
        ]
        raw_line = _put(raw_line, rows, pa.array([text for text, _, _ in masked], pa.string()))
        raw_bytes = _put(raw_bytes, rows, pa.array([blob for _, blob, _ in masked], pa.binary()))
        id_masked[rows] = [first for _, _, first in masked]
    if id_masked.any():
        rows = np.flatnonzero(id_masked)
        transaction_id = _put(
            transaction_id, rows, mask_accounts(transaction_id.take(pa.array(rows, pa.int64())))
        )
    for name, values in (
        ("raw_line", raw_line),
        ("raw_bytes", raw_bytes),
        (first_column, transaction_id),
    ):
        index = records.schema.get_field_index(name)
        records = records.set_column(index, records.schema.field(index), values)
    return records


def mask_record_text(text: str, layout: HeaderLayout = CONTRACT_ORDER) -> str:
    """One record's text masked as `rejected_records` would hold it (for `sluiceway check`,
    which reads a few records back from the file)."""
    return _mask_fields(text, layout)[0]


def _put(values: pa.Array, rows: NDArray[np.int64], replacements: pa.Array) -> pa.Array:
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements.cast(values.type))


def _mask_plain_lines(lines: pa.Array, layout: HeaderLayout) -> tuple[pa.Array, NDArray[np.bool_]]:
    """Quote-free lines split on the delimiter (exact without quotes) and the fields that may
    be sensitive masked, in Arrow; also whether each line's first field was masked."""
    parts = pc.split_pattern(lines, c.DELIMITER)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    fields = pc.list_flatten(parts)
    owner = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(len(fields)) - starts[owner]
    shift = counts[owner] - layout.field_count
    masked = np.zeros(len(fields), dtype=bool)
    for sensitive in layout.sensitive_positions():
        masked |= (position >= sensitive + np.minimum(shift, 0)) & (
            position <= sensitive + np.maximum(shift, 0)
        )
    chosen = np.flatnonzero(masked)
    fields = _put(fields, chosen, mask_accounts(fields.take(pa.array(chosen, pa.int64()))))
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, fields), c.DELIMITER)
    return joined, masked[starts] & (counts > 0)


def _mask_odd_record(
    text: str, blob: bytes | None, layout: HeaderLayout
) -> tuple[str, bytes | None, bool]:
    """A record with quotes or bad bytes. A line that is not UTF-8 is masked in its bytes
    (a bad byte counts as one character) and its text is rebuilt from them, as the tokenizer
    builds it, so neither keeps the original."""
    if blob is None:
        masked, first = _mask_fields(text, layout)
        return masked, None, first
    masked, first = _mask_fields(blob.decode(c.ENCODING, ENCODING_ERRORS), layout)
    masked_blob = masked.encode(c.ENCODING, ENCODING_ERRORS)
    return masked_blob.decode(c.ENCODING, "backslashreplace"), masked_blob, first


def _mask_fields(text: str, layout: HeaderLayout) -> tuple[str, bool]:
    spans = _field_spans(text)
    positions = masked_positions(len(spans), layout)
    fields = [
        _mask_field(text[start:end]) if index in positions else text[start:end]
        for index, (start, end) in enumerate(spans)
    ]
    return c.DELIMITER.join(fields), 0 in positions


def _field_spans(text: str) -> list[tuple[int, int]]:
    """Where each field of a record is, leniently: a quoted field runs to its closing quote
    (`""` is an escaped quote) and on to the next delimiter; an unclosed quote runs to the end;
    a quote inside an unquoted field is content. Never fails."""
    spans: list[tuple[int, int]] = []
    position, size = 0, len(text)
    while True:
        end = _field_end(text, position)
        spans.append((position, end))
        if end >= size:
            return spans
        position = end + 1


def _field_end(text: str, start: int) -> int:
    size = len(text)
    if text.startswith(c.QUOTE, start):
        closing = _closing_quote(text, start + 1)
        if closing == -1:
            return size
        start = closing + 1
    comma = text.find(c.DELIMITER, start)
    return size if comma == -1 else comma


def _closing_quote(text: str, start: int) -> int:
    """The index of the quote that closes a field opened before `start`, or -1."""
    while True:
        quote = text.find(c.QUOTE, start)
        if quote == -1 or not text.startswith(c.QUOTE, quote + 1):
            return quote
        start = quote + 2


def _mask_field(field: str) -> str:
    """A field's text masked; a quoted field stays quoted (escapes redone), an unclosed one
    stays unclosed, and anything after a closing quote is masked as well."""
    if not field.startswith(c.QUOTE):
        return mask_account(field)
    closing = _closing_quote(field, 1)
    body = field[1:] if closing == -1 else field[1:closing]
    value = mask_account(body.replace(c.QUOTE * 2, c.QUOTE)).replace(c.QUOTE, c.QUOTE * 2)
    if closing == -1:
        return c.QUOTE + value
    after = field[closing + 1 :]
    return c.QUOTE + value + c.QUOTE + (mask_account(after) if after else "")
