"""The `reasons` and `reason_detail` columns: built from the rules' broken rows, extended by
the rules that need the whole file, and read as accepted or rejected.

One home for their format (distinct codes in rule order, an empty list means accepted; the
details in the same order, joined by "; "), so the row rules, the whole-file rules and the
table rows agree on it. Built from the broken rows only, with numpy: no Python per record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

DETAIL_SEPARATOR = "; "


@dataclass(frozen=True)
class Rule:
    """One contract rule: where it is broken, its code, and its detail for the broken rows.

    `code` None means the record's own `parse_error` is the code (the tokenizer decided it).
    """

    code: str | None
    broken: NDArray[np.bool_]
    detail: Callable[[NDArray[np.int64]], pa.Array]


def reason_codes(rules: Sequence[Rule], parse_error: pa.Array, size: int) -> pa.ListArray:
    """Each record's distinct codes in rule order, built from the broken rows only."""
    codes = list(dict.fromkeys(rule.code for rule in rules))
    broken_by_code = {code: np.zeros(size, dtype=bool) for code in codes}
    for rule in rules:
        broken_by_code[rule.code] |= rule.broken
    failing = np.zeros(size, dtype=bool)
    for broken in broken_by_code.values():
        failing |= broken
    rows = np.flatnonzero(failing)
    hits = np.column_stack([broken_by_code[code][rows] for code in codes])
    hit_rows, hit_codes = np.nonzero(hits)  # row-major: by record, then in rule order
    # The tokenizer's code is the record's parse_error; the others come from the code list.
    lookup = pa.concat_arrays(
        [parse_error.cast(pa.string()), pa.array([code or "" for code in codes], pa.string())]
    )
    own = np.array([code is None for code in codes])[hit_codes]
    picks = np.where(own, rows[hit_rows], size + hit_codes)
    counts = np.zeros(size, dtype=np.int32)
    counts[rows] = hits.sum(axis=1)
    return pa.ListArray.from_arrays(_offsets(counts), lookup.take(pa.array(picks, pa.int64())))


def reason_details(rules: Sequence[Rule], size: int) -> pa.Array:
    """Each record's details in rule order, joined by "; "; "" for an accepted record."""
    keys: list[NDArray[np.int64]] = []
    texts: list[pa.Array] = []
    for position, rule in enumerate(rules):
        rows = np.flatnonzero(rule.broken)
        if not len(rows):
            continue
        detail = rule.detail(rows)
        known = pc.is_valid(detail).to_numpy(zero_copy_only=False)
        keys.append(rows[known] * len(rules) + position)
        texts.append(detail.filter(pa.array(known)).cast(pa.string()))
    if not keys:
        return pa.repeat(pa.scalar(""), size)
    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key[order] // len(rules), minlength=size).astype(np.int32)
    values = pa.concat_arrays(texts).take(pa.array(order, pa.int64()))
    return pc.binary_join(pa.ListArray.from_arrays(_offsets(counts), values), DETAIL_SEPARATOR)


def _offsets(counts: NDArray[np.int32]) -> pa.Array:
    return pa.array(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int32))


def accepted_mask(validated: pa.Table) -> pa.Array:
    """True for records without reasons."""
    return pc.equal(pc.list_value_length(validated.column("reasons")), 0)


def add_reason(
    validated_or_rejected: pa.Table,
    mask: pa.ChunkedArray | pa.Array,
    code: str,
    details: pa.Array,
) -> pa.Table:
    """Add `code` (once) and append its detail ("; "-joined) to the records where `mask` holds.

    For the rules that need the whole file or the warehouse (duplicate_in_file,
    already_ingested). `details` holds one text per record (only those under `mask` are
    read), or one per masked record in record order.
    """
    table = validated_or_rejected
    size = table.num_rows
    flagged = pc.fill_null(mask, False)
    flagged = (
        flagged.combine_chunks() if isinstance(flagged, pa.ChunkedArray) else flagged
    ).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(flagged)
    if len(details) == len(rows) and len(details) != size:
        details = pc.replace_with_mask(
            pa.nulls(size, pa.string()), pa.array(flagged), details.cast(pa.string())
        )
    elif len(details) != size:
        raise ValueError(
            f"add_reason({code}): {len(details)} details for {size} records "
            f"of which {len(rows)} are flagged; pass one per record or one per flagged record"
        )
    reasons = table.column("reasons").combine_chunks()
    has_code = np.zeros(size, dtype=bool)
    flat = reasons.flatten()
    parents = pc.list_parent_indices(reasons).to_numpy(zero_copy_only=False)
    has_code[parents[pc.equal(flat, code).fill_null(False).to_numpy(zero_copy_only=False)]] = True
    appended = flagged & ~has_code
    lengths = pc.list_value_length(reasons).fill_null(0).to_numpy(zero_copy_only=False)
    counts = (lengths + appended).astype(np.int32)
    ends = np.cumsum(counts, dtype=np.int64)
    picks = np.full(int(ends[-1]) if size else 0, len(flat), dtype=np.int64)
    shift = np.repeat(np.cumsum(appended) - appended, lengths)
    picks[np.arange(len(flat)) + shift] = np.arange(len(flat))
    values = pa.concat_arrays([flat.cast(pa.string()), pa.array([code], pa.string())])
    new_reasons = pa.ListArray.from_arrays(
        _offsets(counts), values.take(pa.array(picks, pa.int64()))
    )
    old_detail = table.column("reason_detail").combine_chunks()
    joined = pc.if_else(
        pc.equal(old_detail, ""),
        details,
        pc.binary_join_element_wise(old_detail, details, DETAIL_SEPARATOR),
    )
    new_detail = pc.if_else(pa.array(flagged), joined, old_detail)
    return table.set_column(
        table.schema.get_field_index("reasons"), "reasons", new_reasons.cast(reasons.type)
    ).set_column(table.schema.get_field_index("reason_detail"), "reason_detail", new_detail)
