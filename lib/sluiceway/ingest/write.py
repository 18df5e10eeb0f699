"""One chunk, inside its Spark task: tokenize -> validate -> Parquet files in the tables' data
locations; the task returns only file paths and figures.

Why the task writes the files itself: the records are Arrow from the tokenizer onwards, and
turning 16 string columns into Spark rows, validating them in Spark SQL and writing them back
through Spark cost most of the ingest's time. Whole-file checks (an id seen earlier in the
file, or already ingested) need every chunk: each task also leaves the narrow (id, line)
pairs of its records in staging, the driver decides those checks from them in Arrow
(`whole_file_reasons`), and only the few affected chunks are written again with the reasons.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluiceway import contract as c
from sluiceway.feeds import Feed
from sluiceway.iceberg_files import WriteTarget, by_day, write_parquet
from sluiceway.ingest.duplicates import (
    IdHash,
    duplicate_details,
    duplicates_in_file,
    id_hashes,
    ids_in,
    readable_ids,
)
from sluiceway.ingest.header import HeaderLayout
from sluiceway.ingest.landing import LandingChunk, read_chunk
from sluiceway.ingest.parse import CONTRACT_LAYOUT, tokenize
from sluiceway.ingest.reasons import add_reason
from sluiceway.ingest.table_rows import Lineage, to_rejected, to_transactions
from sluiceway.ingest.validate import validate
from sluiceway.locations import resolve

# One row per file a task wrote: its chunk, and the file's figures as JSON (FileFigures).
TASK_OUTPUT_SCHEMA = pa.schema([pa.field("chunk", pa.int64()), pa.field("file", pa.string())])
IDS_TABLE = "ids"  # FileFigures.table of a chunk's (id, line) pairs in staging
IDS_SCHEMA = pa.schema(
    [pa.field("transaction_id", pa.string()), pa.field("line_number", pa.int64())]
)


@dataclass(frozen=True)
class ExtraReason:
    """A reason the driver found for one line (duplicate_in_file, already_ingested)."""

    code: str
    detail: str


@dataclass(frozen=True)
class ChunkPlan:
    """Everything a task needs; pickled to the executors once."""

    lineage: Lineage
    transactions: WriteTarget
    rejected: WriteTarget
    max_record_bytes: int
    ids_location: str  # staging folder for the chunks' (id, line) pairs
    extra_reasons: Mapping[int, tuple[ExtraReason, ...]] = field(default_factory=dict)
    layout: HeaderLayout = CONTRACT_LAYOUT  # the file's header: which field is which column


@dataclass
class FileFigures:
    """What one written file holds, for the audit without reading it back.

    `line_runs` are the physical lines its rows cover, as runs of consecutive lines merged
    and flattened: [first, last, first, last, ...]. A chunk's rows are nearly all
    consecutive, so a file has about one run per rejected line or other-day record between
    its rows; the audit tiles the file's lines with the runs of every file (reconcile).
    """

    table: str
    path: str
    partition: str | None
    records: int
    lines: int
    line_runs: list[int] = field(default_factory=list)
    amount_by_currency: dict[str, str] = field(default_factory=dict)
    count_by_currency: dict[str, int] = field(default_factory=dict)
    count_by_reason: dict[str, int] = field(default_factory=dict)
    first_event_micros: int | None = None
    last_event_micros: int | None = None


def write_chunk(chunk: LandingChunk, index: int, plan: ChunkPlan) -> list[FileFigures]:
    """Write one chunk's accepted and rejected records, and its (id, line) pairs to staging."""
    feed = plan.lineage.feed
    records = tokenize(
        read_chunk(chunk), chunk.first_line_number, plan.max_record_bytes, plan.layout
    )
    validated = _with_extra_reasons(
        validate(records, feed, plan.layout.field_count), plan.extra_reasons
    )
    attempt = f"{plan.lineage.ingest_id}-{index:05d}-{uuid.uuid4().hex[:8]}"
    files = write_records(
        validated, plan.lineage, plan.transactions, plan.rejected, attempt, plan.layout
    )
    if not plan.extra_reasons:
        files.append(_write_ids(validated, plan.ids_location, attempt, feed.key))
    return files


def _write_ids(validated: pa.Table, location: str, attempt: str, key: str) -> FileFigures:
    """The (id, line) pairs of the records whose id (the feed's key) could be read, as an
    Arrow IPC file."""
    readable = pa.array(readable_ids(validated, key))
    pairs = validated.select([key, "line_number"]).filter(readable)
    ids = pairs.rename_columns(IDS_SCHEMA.names).cast(IDS_SCHEMA)
    filesystem, root = resolve(location)
    filesystem.create_dir(root, recursive=True)
    with (
        filesystem.open_output_stream(f"{root}/{attempt}.arrow") as sink,
        pa.ipc.new_file(sink, IDS_SCHEMA) as writer,
    ):
        writer.write_table(ids)
    return FileFigures(IDS_TABLE, f"{location}/{attempt}.arrow", None, ids.num_rows, 0)


def read_ids(files: list[FileFigures]) -> pa.Table:
    """All chunks' (id, line) pairs, read back on the driver."""
    tables = [IDS_SCHEMA.empty_table()]
    for figures in files:
        filesystem, path = resolve(figures.path)
        with filesystem.open_input_file(path) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    return pa.concat_tables(tables)


def read_ids_of_ingests(
    paths: list[str],
    ingest_ids: list[str],
    first: datetime,
    last: datetime,
    key: str = "transaction_id",
    event_time: str = "event_time",
) -> pa.ChunkedArray:
    """The ids (`key`) of the rows in these data files that belong to the given ingests and
    have their event time in [first, last]."""
    wanted = pa.array(ingest_ids, pa.string())
    start, end = (
        pa.scalar(first, pa.timestamp("us", "UTC")),
        pa.scalar(last, pa.timestamp("us", "UTC")),
    )
    chunks = []
    for path in paths:
        filesystem, local = resolve(path)
        rows = pq.read_table(local, columns=[key, "ingest_id", event_time], filesystem=filesystem)
        keep = pc.and_(
            pc.is_in(rows["ingest_id"], value_set=wanted),
            pc.and_(
                pc.greater_equal(rows[event_time], start), pc.less_equal(rows[event_time], end)
            ),
        )
        chunks.extend(rows[key].filter(keep).chunks)
    return pa.chunked_array(chunks, pa.string())


def whole_file_reasons(
    ids: pa.Table,
    known: pa.Array | pa.ChunkedArray,
    hash_ids: IdHash = id_hashes,
    key: str = "transaction_id",
) -> dict[int, tuple[ExtraReason, ...]]:
    """Lines whose id appears on an earlier line of the file, or is in `known` ids.

    The same duplicate rule as `sluiceway check` (duplicates.duplicates_in_file) plus a look-up
    in the known ids, without a shuffle of whole records. Both compare 64-bit hashes of the ids
    first and confirm the candidates on the ids' text (`id_hash`), so a hash collision never
    rejects a record and random ids cost what sequential ones do.
    """
    # Chunk by chunk, as the tasks wrote them: one array of 30M ids would cost its copy and
    # hashing's temporaries at that size (~2.3 GB more peak on the driver, measured).
    transaction_ids = ids["transaction_id"]
    lines = ids["line_number"].to_numpy()
    hashes = hash_ids(transaction_ids)
    repeated, first_lines = duplicates_in_file(transaction_ids, lines, hashes, hash_ids)
    is_known = ids_in(transaction_ids, hashes, known, hash_ids)
    suspects = np.flatnonzero(repeated | is_known)
    chosen = transaction_ids.take(pa.array(suspects, pa.int64()))
    duplicate_texts = duplicate_details(chosen, first_lines[suspects], key).to_pylist()
    extra: dict[int, tuple[ExtraReason, ...]] = {}
    for position, transaction_id, duplicate_text in zip(
        suspects.tolist(), chosen.to_pylist(), duplicate_texts, strict=True
    ):
        reasons = []
        if repeated[position]:
            reasons.append(ExtraReason(c.DUPLICATE_IN_FILE, duplicate_text))
        if is_known[position]:
            reasons.append(
                ExtraReason(
                    c.ALREADY_INGESTED,
                    f"{c.ALREADY_INGESTED}: {key} '{transaction_id}' is already in transactions",
                )
            )
        extra[int(lines[position])] = tuple(reasons)
    return extra


def _with_extra_reasons(
    validated: pa.Table, extra: Mapping[int, tuple[ExtraReason, ...]]
) -> pa.Table:
    if not extra:
        return validated
    lines = validated["line_number"].to_numpy()
    flagged = np.fromiter(extra, dtype=np.int64)
    hits = np.isin(lines, flagged)
    if not hits.any():
        return validated
    codes = sorted({reason.code for reasons in extra.values() for reason in reasons})
    for code in codes:
        details = [
            next((r.detail for r in extra.get(int(line), ()) if r.code == code), None)
            if hit
            else None
            for line, hit in zip(lines, hits, strict=True)
        ]
        mask = pa.array([detail is not None for detail in details])
        validated = add_reason(validated, mask, code, pa.array(details, pa.string()))
    return validated


def _write_table(
    table: pa.Table,
    target: WriteTarget,
    attempt: str,
    figures: Callable[[pa.Table], dict[str, object]],
) -> list[FileFigures]:
    if table.num_rows == 0:
        return []
    written = []
    for partition, rows in by_day(table, target):
        file = write_parquet(rows, target, partition, attempt)
        written.append(
            FileFigures(
                target.table,
                file.path,
                partition,
                rows.num_rows,
                _lines_covered(rows),
                line_runs(rows),
                **figures(rows),  # type: ignore[arg-type]
            )
        )
    return written


def _lines_covered(rows: pa.Table) -> int:
    return int(
        pc.sum(pc.add(pc.subtract(rows["last_line_number"], rows["line_number"]), 1)).as_py() or 0
    )


def line_runs(rows: pa.Table) -> list[int]:
    """[line_number, last_line_number] of the rows, merged where one ends right before the
    next begins, flattened; a line covered twice stays two runs, so the audit sees it."""
    if not rows.num_rows:
        return []
    first = rows["line_number"].to_numpy()
    last = rows["last_line_number"].to_numpy()
    # Plain records come first in a chunk, quoted ones after them: sort by line.
    order = np.argsort(first, kind="stable")
    first, last = first[order], last[order]
    breaks = np.flatnonzero(first[1:] != last[:-1] + 1) + 1
    run_starts = np.concatenate(([0], breaks))
    run_ends = np.concatenate((breaks, [len(first)])) - 1
    runs: list[int] = np.column_stack((first[run_starts], last[run_ends])).ravel().tolist()
    return runs


def _transaction_figures(feed: Feed) -> Callable[[pa.Table], dict[str, object]]:
    """Control totals per currency (for a feed naming its amount and currency columns) and
    the event-time range of a file's accepted rows."""

    def figures(rows: pa.Table) -> dict[str, object]:
        micros = rows[feed.event_time].cast(pa.int64())
        times = {
            "first_event_micros": pc.min(micros).as_py(),
            "last_event_micros": pc.max(micros).as_py(),
        }
        if feed.amount is None or feed.currency is None:
            return times
        return {**_totals(rows.rename_columns(_totals_names(rows, feed))), **times}

    return figures


def _totals_names(rows: pa.Table, feed: Feed) -> list[str]:
    names = {feed.amount: "amount", feed.currency: "currency"}
    return [names.get(name, name) for name in rows.column_names]


def _totals(rows: pa.Table) -> dict[str, object]:
    grouped = rows.group_by("currency").aggregate([("amount", "sum"), ("amount", "count")])
    return {
        "amount_by_currency": {
            currency: str(total)
            for currency, total in zip(
                grouped["currency"].to_pylist(), grouped["amount_sum"].to_pylist(), strict=True
            )
        },
        "count_by_currency": dict(
            zip(grouped["currency"].to_pylist(), grouped["amount_count"].to_pylist(), strict=True)
        ),
    }


def _rejected_figures(rows: pa.Table) -> dict[str, object]:
    reasons = pc.list_flatten(rows["reasons"])
    counts = pc.value_counts(reasons)
    return {"count_by_reason": {item["values"].as_py(): item["counts"].as_py() for item in counts}}


def task_function(
    plan: ChunkPlan, chunks: Sequence[tuple[int, LandingChunk]]
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The `mapInArrow` function over `spark.range(len(chunks))`: each input value is a
    position in `chunks` (index and chunk travel with the function); one output row per file
    written."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for position in batch.column(0).to_pylist():
                index, chunk = chunks[position]
                files = write_chunk(chunk, index, plan)
                yield pa.RecordBatch.from_pylist(
                    [{"chunk": index, "file": json.dumps(figures.__dict__)} for figures in files]
                    or [{"chunk": index, "file": None}],
                    schema=TASK_OUTPUT_SCHEMA,
                )

    return run


def figures_from_json(text: str) -> FileFigures:
    return FileFigures(**json.loads(text))


def write_records(
    validated: pa.Table,
    lineage: Lineage,
    transactions: WriteTarget,
    rejected: WriteTarget,
    attempt: str,
    layout: HeaderLayout | None = None,
) -> list[FileFigures]:
    """Validated records -> Parquet files of `transactions` and `rejected_records` (one per
    day partition), named after `attempt`; the figures of each file. Files and streams alike
    (a stream's values have the contract's order)."""
    files = _write_table(
        to_transactions(validated, lineage),
        transactions,
        attempt,
        _transaction_figures(lineage.feed),
    )
    files += _write_table(
        to_rejected(validated, lineage, layout), rejected, attempt, _rejected_figures
    )
    return files
