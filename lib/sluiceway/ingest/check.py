"""`sluiceway check`: a landing file through the ingest's own scan, tokenizer and rules,
without Spark or a warehouse, so a partner or an operator can pre-flight a file.

The same code decides as the ingest: `landing.scan_landing_file` (whole-file rules: header,
gzip, line ends), `parse.tokenize` and `validate` per record-aligned chunk, and the
duplicate-in-file rule over the whole file. Only `already_ingested` is left out: it needs
the ids already in the warehouse.

Chunks run in worker processes, not threads: the tokenizer's per-record Python (quoted and
undecodable lines, about 30% of its time in a profile) holds the GIL, which caps two threads
at about 1.5x one; processes cost about 0.3 s of CPU per million records in start-up and
page faults.
"""

from __future__ import annotations

import bisect
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway import contract as c
from sluiceway.errors import ExitCode, LandingFileError
from sluiceway.feeds import Feed
from sluiceway.ingest.boundaries import BOM, line_index
from sluiceway.ingest.duplicates import duplicate_details, duplicates_in_file, readable_ids
from sluiceway.ingest.file_policy import (
    FIRST_LINES,
    FilePolicy,
    feed_policy,
    judge_file,
)
from sluiceway.ingest.header import HeaderLayout
from sluiceway.ingest.landing import LandingChunk, LandingScan, read_chunk, scan_landing_file
from sluiceway.ingest.masking import mask_record_text
from sluiceway.ingest.parse import tokenize
from sluiceway.ingest.reasons import accepted_mask
from sluiceway.ingest.rejected_lines import first_lines_by_reason
from sluiceway.ingest.table_rows import Lineage, to_rejected
from sluiceway.ingest.validate import validate
from sluiceway.settings import Settings

DEFAULT_WORKERS = 2
NOT_CHECKED = (c.ALREADY_INGESTED,)
_SHOWN_COLUMNS = ("line_number", "last_line_number", "reasons", "reason_detail", "raw_line")
_ID_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("line_number", pa.int64()),
        ("last_line_number", pa.int64()),
        ("rejected", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class RejectedLine:
    """A rejected record as `rejected_records` would hold it (detail starts `line N: `)."""

    line_number: int
    last_line_number: int
    reasons: tuple[str, ...]
    reason_detail: str
    raw_line: str | None


@dataclass(frozen=True)
class CheckResult:
    """What the ingest would find in the file, or the whole-file rule it breaks.

    `lines` counts the physical lines after the header; accepted_lines + rejected_lines
    covers each exactly once, as the ingest's reconciliation demands.
    """

    source: str
    passed: bool
    failed_rule: str | None = None
    problem: str | None = None
    file_bytes: int = 0
    sha256: str = ""
    lines: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    accepted_lines: int = 0
    rejected_lines: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    first_rejected: tuple[RejectedLine, ...] = ()
    seconds: float = 0.0
    layout: HeaderLayout | None = None  # how the header was read, when it could be

    @property
    def exit_code(self) -> int:
        """0 when the file passes the whole-file rules, rejected lines or not."""
        return ExitCode.OK if self.passed else ExitCode.BAD_INPUT

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "passed": self.passed,
            "failed_rule": self.failed_rule,
            "problem": self.problem,
            "file_bytes": self.file_bytes,
            "sha256": self.sha256,
            "lines": self.lines,
            "records": self.records,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "accepted_lines": self.accepted_lines,
            "rejected_lines": self.rejected_lines,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "not_checked": list(NOT_CHECKED),
            "header": self._header_json(),
            "first_rejected": [
                {**asdict(line), "reasons": list(line.reasons)} for line in self.first_rejected
            ],
            "seconds": round(self.seconds, 3),
        }

    def _header_json(self) -> dict[str, object] | None:
        if self.layout is None:
            return None
        return {
            "reordered": self.layout.reordered,
            "missing_optional": list(self.layout.missing_optional),
            "ignored_columns": [name for _, name in self.layout.ignored],
            "rescued_columns": [name for _, name in self.layout.rescued],
        }

    def to_text(self) -> str:
        """The report a person reads: verdict, counts, reasons, the first rejected lines."""
        if not self.passed:
            return f"FAILED whole-file rule '{self.failed_rule}': {self.problem}"
        lines = [
            f"{self.source}: passes the whole-file rules (header, gzip, line ends)",
            f"  {self.file_bytes:,} bytes, sha256 {self.sha256}",
            *([f"  header: {self.layout.outcome()}"] if self.layout else []),
            f"  {self.lines:,} lines after the header: {self.accepted_lines:,} accepted, "
            f"{self.rejected_lines:,} rejected",
            f"  {self.records:,} records: {self.accepted:,} accepted, {self.rejected:,} rejected",
        ]
        if self.rejected_by_reason:
            width = max(len(reason) for reason in self.rejected_by_reason)
            lines += ["", f"  {'reason':<{width}}  records"]
            lines += [
                f"  {reason:<{width}}  {count:>7,}"
                for reason, count in sorted(self.rejected_by_reason.items())
            ]
        lines += ["", f"  not checked: {', '.join(NOT_CHECKED)} (needs the warehouse)"]
        if self.first_rejected:
            lines += ["", f"  first {len(self.first_rejected)} rejected:"]
            for line in self.first_rejected:
                lines += [f"  {line.reason_detail}", f"    {line.raw_line!r}"]
        lines += ["", f"  checked in {self.seconds:.2f} s"]
        return "\n".join(lines)


@dataclass(frozen=True)
class _ChunkCheck:
    """One chunk's figures, its first rejected records, and its readable ids (for the
    duplicate rule, which needs the whole file)."""

    records: int
    accepted: int
    accepted_lines: int
    rejected_lines: int
    rejected_by_reason: dict[str, int]
    first_rejected: pa.Table
    ids: pa.Table
    first_lines_by_reason: dict[str, list[int]]


@dataclass(frozen=True)
class _ChunkFailure:
    """A whole-file problem a worker found (the file changed since the scan): returned, not
    raised, because LandingFileError does not survive pickling."""

    rule: str
    problem: str


def check_landing_file(
    source: str,
    settings: Settings,
    show: int = 10,
    workers: int = DEFAULT_WORKERS,
    policy: FilePolicy | None = None,
) -> CheckResult:
    """Check a local file or s3:// object; whole-file failures are a result, not an error.

    Chunk size and record-size cap are the ingest's settings, so both cut the file alike; a
    file the ingest would refuse by `policy` fails with the ingest's message.
    """
    started = time.monotonic()
    feed = settings.feed_contract()
    chunk_bytes = settings.parse_chunk_mb * 1024 * 1024
    # A .gz file is unpacked next to this process, whatever the profile's staging location.
    with (
        tempfile.TemporaryDirectory(prefix="sluiceway-check-") as staging,
        _workers(workers) as pool,
    ):
        try:
            scan = scan_landing_file(
                source,
                chunk_bytes,
                staging,
                settings.max_record_bytes,
                None,
                *settings.header_reading(),
                feed.columns,
            )
        except LandingFileError as error:
            return CheckResult(
                source, False, error.rule, str(error), seconds=time.monotonic() - started
            )
        chunks = _check_chunks(pool, scan, show, settings.max_record_bytes, feed)
        for chunk in chunks:
            if isinstance(chunk, _ChunkFailure):
                return CheckResult(
                    source, False, chunk.rule, chunk.problem, seconds=time.monotonic() - started
                )
        checked = [chunk for chunk in chunks if isinstance(chunk, _ChunkCheck)]
        judged_by = policy or feed_policy(feed)
        return _summarise(scan, checked, show, time.monotonic() - started, judged_by, feed.key)


@contextmanager
def _workers(count: int) -> Iterator[ProcessPoolExecutor | None]:
    """Forked worker processes: they inherit the imported modules.

    The first Arrow array a process builds imports pandas (0.4 s of CPU); building one here,
    before the fork, makes that once per check instead of once per worker.
    """
    if count <= 1:
        yield None
        return
    pa.array([0])
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


def _check_chunks(
    pool: ProcessPoolExecutor | None,
    scan: LandingScan,
    show: int,
    max_record_bytes: int,
    feed: Feed,
) -> list[_ChunkCheck | _ChunkFailure]:
    count = len(scan.chunks)
    layout = scan.layout
    if pool is None or count <= 1:
        return [_check_chunk(chunk, show, max_record_bytes, layout, feed) for chunk in scan.chunks]
    return list(
        pool.map(
            _check_chunk,
            scan.chunks,
            [show] * count,
            [max_record_bytes] * count,
            [layout] * count,
            [feed] * count,
        )
    )


def _check_chunk(
    chunk: LandingChunk, show: int, max_record_bytes: int, layout: HeaderLayout, feed: Feed
) -> _ChunkCheck | _ChunkFailure:
    """Tokenize and validate one chunk (in a worker); return figures, not records."""
    try:
        data = read_chunk(chunk)
    except LandingFileError as error:
        return _ChunkFailure(error.rule, str(error))
    records = tokenize(data, chunk.first_line_number, max_record_bytes, layout)
    validated = validate(records, feed, layout.field_count)
    accepted = accepted_mask(validated)
    spans = pc.add(
        pc.subtract(validated.column("last_line_number"), validated.column("line_number")), 1
    )
    accepted_lines = pc.sum(spans.filter(accepted)).as_py() or 0
    rejected = validated.filter(pc.invert(accepted))
    reasons = pc.value_counts(pc.list_flatten(rejected.column("reasons")).combine_chunks())
    order = pc.sort_indices(rejected.column("line_number"))[:show]
    lineage = Lineage(chunk.path, "check", datetime.now(UTC), feed)
    readable = readable_ids(validated, feed.key)
    ids = validated.filter(pa.array(readable))
    return _ChunkCheck(
        records=validated.num_rows,
        accepted=validated.num_rows - rejected.num_rows,
        accepted_lines=accepted_lines,
        rejected_lines=pc.sum(spans).as_py() - accepted_lines if validated.num_rows else 0,
        rejected_by_reason={
            row["values"]: row["counts"] for row in reasons.to_pylist() if row["values"]
        },
        first_rejected=to_rejected(rejected.take(order), lineage, layout).select(
            list(_SHOWN_COLUMNS)
        ),
        ids=pa.Table.from_arrays(
            [
                *ids.select([feed.key, *_ID_SCHEMA.names[1:-1]]).columns,
                pc.invert(accepted.filter(pa.array(readable))),
            ],
            schema=_ID_SCHEMA,
        ),
        first_lines_by_reason=first_lines_by_reason(
            [rejected], pc.unique(pc.list_flatten(rejected.column("reasons"))).to_pylist()
        ),
    )


def _summarise(
    scan: LandingScan,
    chunks: list[_ChunkCheck],
    show: int,
    seconds: float,
    policy: FilePolicy,
    key: str,
) -> CheckResult:
    """Chunk figures plus the duplicate rule over the whole file's ids, judged by `policy`."""
    by_reason: Counter[str] = Counter()
    for chunk in chunks:
        by_reason.update(chunk.rejected_by_reason)
    ids = pa.concat_tables([chunk.ids for chunk in chunks]) if chunks else None
    records = sum(chunk.records for chunk in chunks)
    accepted = sum(chunk.accepted for chunk in chunks)
    accepted_lines = sum(chunk.accepted_lines for chunk in chunks)
    rejected_lines = sum(chunk.rejected_lines for chunk in chunks)
    duplicates = _ID_SCHEMA.empty_table()
    first_lines = np.zeros(0, dtype=np.int64)
    if ids is not None and ids.num_rows:
        lines = ids.column("line_number").to_numpy()
        repeated, first_line = duplicates_in_file(ids.column("transaction_id"), lines)
        duplicates = ids.filter(pa.array(repeated))
        first_lines = first_line[repeated]
    if duplicates.num_rows:
        by_reason[c.DUPLICATE_IN_FILE] = duplicates.num_rows
        newly = pc.invert(duplicates.column("rejected")).to_numpy(zero_copy_only=False)
        spans = (
            duplicates.column("last_line_number").to_numpy()
            - duplicates.column("line_number").to_numpy()
            + 1
        )
        accepted -= int(newly.sum())
        accepted_lines -= int(spans[newly].sum())
        rejected_lines += int(spans[newly].sum())
    shown = _first_rejected(scan, chunks, duplicates, first_lines, show, key)
    found = [chunk.first_lines_by_reason for chunk in chunks]
    duplicate_lines = np.sort(duplicates.column("line_number").to_numpy())[:FIRST_LINES]
    found.append({c.DUPLICATE_IN_FILE: duplicate_lines.tolist()})
    refusal = judge_file(
        policy,
        scan.source,
        scan.physical_lines,
        rejected_lines,
        by_reason,
        lambda reasons: {
            reason: sorted(line for lines in found for line in lines.get(reason, ()))[:FIRST_LINES]
            for reason in reasons
        },
    )
    return CheckResult(
        source=scan.source,
        passed=refusal is None,
        failed_rule=refusal.rule if refusal else None,
        problem=refusal.message if refusal else None,
        file_bytes=scan.file_bytes,
        sha256=scan.sha256,
        lines=scan.physical_lines,
        records=records,
        accepted=accepted,
        rejected=records - accepted,
        accepted_lines=accepted_lines,
        rejected_lines=rejected_lines,
        rejected_by_reason=dict(by_reason),
        first_rejected=shown,
        seconds=seconds,
        layout=scan.layout,
    )


def _first_rejected(
    scan: LandingScan,
    chunks: list[_ChunkCheck],
    duplicates: pa.Table,
    first_lines: NDArray[np.int64],
    show: int,
    key: str,
) -> tuple[RejectedLine, ...]:
    """The first `show` rejected records of the file, duplicates included.

    Each chunk sent its first `show` records rejected by the rules, so every record of the
    file's first `show` is among them or among the duplicates; a duplicate that no rule
    rejected has its raw text read back from the file.
    """
    shown: dict[int, RejectedLine] = {}
    for chunk in chunks:
        for row in chunk.first_rejected.to_pylist():
            shown[row["line_number"]] = RejectedLine(**{**row, "reasons": tuple(row["reasons"])})
    order = np.argsort(duplicates.column("line_number").to_numpy(), kind="stable")
    earliest = duplicates.take(pa.array(order[:show], pa.int64()))
    ids = earliest.column("transaction_id")
    details = duplicate_details(ids, first_lines[order[:show]], key)
    unread: list[tuple[int, int]] = []
    for row, detail in zip(earliest.to_pylist(), details.to_pylist(), strict=True):
        line = row["line_number"]
        if line in shown:
            known = shown[line]
            shown[line] = replace(
                known,
                reasons=(*known.reasons, c.DUPLICATE_IN_FILE),
                reason_detail=f"{known.reason_detail}; {detail}",
            )
        elif not row["rejected"]:
            label = _lines_label(line, row["last_line_number"])
            shown[line] = RejectedLine(
                line, row["last_line_number"], (c.DUPLICATE_IN_FILE,), f"{label}: {detail}", None
            )
            unread.append((line, row["last_line_number"]))
    first = sorted(shown.values(), key=lambda line: line.line_number)[:show]
    last_shown = first[-1].line_number if first else 0
    texts = _raw_text(scan, [span for span in unread if span[0] <= last_shown])
    return tuple(
        replace(line, raw_line=texts[line.line_number])
        if line.raw_line is None and line.line_number in texts
        else line
        for line in first
    )


def _lines_label(first: int, last: int) -> str:
    return f"lines {first}-{last}" if last > first else f"line {first}"


def _raw_text(scan: LandingScan, spans: list[tuple[int, int]]) -> dict[int, str]:
    """The text of a few records, read back from their chunks by line number, masked as
    `rejected_records` would hold it."""
    starts = [chunk.first_line_number for chunk in scan.chunks]
    texts: dict[int, str] = {}
    by_chunk: dict[int, list[tuple[int, int]]] = {}
    for span in spans:
        by_chunk.setdefault(bisect.bisect_right(starts, span[0]) - 1, []).append(span)
    for index, chunk_spans in by_chunk.items():
        chunk = scan.chunks[index]
        data = read_chunk(chunk)
        lines = line_index(data)
        for first, last in chunk_spans:
            text = data[
                lines.starts[first - chunk.first_line_number] : lines.ends[
                    last - chunk.first_line_number
                ]
            ]
            texts[first] = mask_record_text(
                text.removesuffix(b"\r")
                .removeprefix(BOM)
                .decode(c.ENCODING, errors="backslashreplace"),
                scan.layout,
            )
    return texts
