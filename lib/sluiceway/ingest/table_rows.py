"""Validated records -> rows of `transactions` and `rejected_records`, with their lineage.

The one place that shapes the two tables' rows: accepted records typed (blank optional fields
null, the typed amount and event time), rejected ones as the file held them (raw text, line
range, reasons and detail) but with their sensitive values masked (`masking`), both stamped
with the file and the ingest they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway import contract as c
from sluiceway.feeds import Feed
from sluiceway.ingest.arrow_text import blank
from sluiceway.ingest.header import RESCUED_COLUMN, HeaderLayout, contract_layout
from sluiceway.ingest.masking import mask_rejected
from sluiceway.ingest.reasons import accepted_mask
from sluiceway.ingest.validate import TIMESTAMP_TYPE, VALUE_SUFFIX
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS, arrow_schema


@dataclass(frozen=True)
class Lineage:
    """Where an ingest's rows come from; stamped on every row of both tables.

    `ingested_at` must be timezone-aware: a naive datetime would be read as local time.
    `feed` is the contract the rows were checked against (its rule_version is stamped on
    every rejected row).
    """

    source_file: str
    ingest_id: str
    ingested_at: datetime
    feed: Feed = field(default=c.TRANSACTIONS_FEED, compare=False)

    def __post_init__(self) -> None:
        if self.ingested_at.tzinfo is None:
            raise ValueError(f"ingested_at {self.ingested_at} has no time zone; pass UTC")


def to_transactions(validated: pa.Table, lineage: Lineage) -> pa.Table:
    """Accepted records typed as the `transactions` table, with lineage columns.

    Blank optional fields become null; amount and event time are the typed values.
    """
    feed = lineage.feed
    typed = {column.name for column in feed.typed_columns}
    names = [
        column.name + VALUE_SUFFIX if column.name in typed else column.name
        for column in feed.columns
    ]
    lineage_columns = ["line_number", "last_line_number", RESCUED_COLUMN, "warnings"]
    # Only the columns the table keeps go through the filter (not raw text, details, ...),
    # and only when some record was rejected: a chunk with none keeps every row without the
    # filter's copy (~15 ms of a 141,652-record chunk).
    kept = validated.select(names + lineage_columns)
    mask = accepted_mask(validated)
    accepted = kept if pc.all(mask, skip_nulls=False).as_py() else kept.filter(mask)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for column, name in zip(feed.columns, names, strict=True):
        values = accepted.column(name)
        if not column.required and column.name not in typed:
            values = values.combine_chunks()
            values = pc.if_else(pa.array(blank(values)), pa.scalar(None, pa.string()), values)
        arrays.append(values)
    size = accepted.num_rows
    arrays += [
        pa.repeat(pa.scalar(lineage.source_file), size),
        pa.repeat(pa.scalar(lineage.ingest_id), size),
        accepted.column("line_number"),
        accepted.column("last_line_number"),
        _ingested_at(lineage, size),
        accepted.column(RESCUED_COLUMN),
        accepted.column("warnings"),
    ]
    return _as_table(arrays, arrow_schema(TRANSACTIONS, feed))


def raw_text(records: pa.Table, feed: Feed = c.TRANSACTIONS_FEED) -> pa.ChunkedArray | pa.Array:
    """The record as it stood in the file; the tokenizer leaves it null for plain lines.

    Not `null_handling="skip"`: pyarrow 20 drops a row whose fields are all null (a record
    that opens with an unclosed quote) from the result instead of joining it to "".
    """
    fields = [records.column(name) for name in feed.column_names]
    rebuilt = pc.binary_join_element_wise(
        *fields, feed.delimiter, null_handling="replace", null_replacement=""
    )
    return pc.coalesce(records.column("raw_line"), rebuilt)


def _lines_label(records: pa.Table) -> pa.ChunkedArray | pa.Array:
    """`line 7`, or `lines 7-9` for a record over several physical lines."""
    first = pc.cast(records.column("line_number"), pa.string())
    last = pc.cast(records.column("last_line_number"), pa.string())
    several = pc.greater(records.column("last_line_number"), records.column("line_number"))
    return pc.if_else(
        several,
        pc.binary_join_element_wise("lines ", first, "-", last, ""),
        pc.binary_join_element_wise("line ", first, ""),
    )


def to_rejected(
    validated: pa.Table, lineage: Lineage, layout: HeaderLayout | None = None
) -> pa.Table:
    """Rejected records as the `rejected_records` table: raw text, lines, reasons, detail;
    sensitive values masked where the file's header (`layout`; by default the feed's own
    order) put them (the detail was built masked by `validate`)."""
    layout = layout or contract_layout(lineage.feed.columns)
    rejected = mask_rejected(validated.filter(pc.invert(accepted_mask(validated))), layout)
    size = rejected.num_rows
    detail = pc.binary_join_element_wise(
        _lines_label(rejected), rejected.column("reason_detail"), ": "
    )
    arrays = [
        pa.repeat(pa.scalar(lineage.source_file), size),
        pa.repeat(pa.scalar(lineage.ingest_id), size),
        rejected.column("line_number"),
        rejected.column("last_line_number"),
        raw_text(rejected, lineage.feed),
        rejected.column("raw_bytes"),
        rejected.column("reasons"),
        detail,
        rejected.column(lineage.feed.key),
        _ingested_at(lineage, size),
        pa.repeat(pa.scalar(lineage.feed.rule_version), size),
    ]
    return _as_table(arrays, arrow_schema(REJECTED_RECORDS, lineage.feed))


def _ingested_at(lineage: Lineage, size: int) -> pa.Array:
    return pa.repeat(pa.scalar(lineage.ingested_at.astimezone(UTC), TIMESTAMP_TYPE), size)


def _as_table(arrays: Sequence[pa.Array | pa.ChunkedArray], schema: pa.Schema) -> pa.Table:
    """The columns cast to the table's exact Arrow types (list field names, nullability)."""
    columns = [
        pa.chunked_array([array] if isinstance(array, pa.Array) else array.chunks, array.type)
        for array in arrays
    ]
    return pa.Table.from_arrays(
        [column.cast(field.type) for column, field in zip(columns, schema, strict=True)],
        schema=schema,
    )
