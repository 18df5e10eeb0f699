"""Reconciliation: what was read must equal what was written, and match the partner's manifest.

Physical lines are the unit: every line after the header must be covered by exactly one
accepted or rejected record, so a line the tokenizer swallowed can never pass. Sums alone
would let a line covered twice make up for a line covered by nothing: the records' line
ranges must tile the file (`tiling_problems`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray
from pyarrow import fs as pafs

from sluiceway.errors import LandingFileError
from sluiceway.locations import resolve

_MANIFEST_COUNTS = ("records", "accepted", "rejected")


@dataclass(frozen=True)
class Counts:
    """The figures of one ingest, as read back from the tables.

    `lines_read` is the scan's count of physical lines after the header; `records_read` is
    the tokenizer's count of records; the rest come from the tables. `line_runs` holds, per
    table, each written file's runs of lines ([first, last, first, last, ...], as
    `write.FileFigures.line_runs`); None when they are not known, and the tiling is then not
    checked.
    """

    lines_read: int
    accepted: int
    rejected: int
    records_read: int = 0
    accepted_lines: int = 0
    rejected_lines: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_amount_by_currency: dict[str, Decimal] = field(default_factory=dict)
    accepted_count_by_currency: dict[str, int] = field(default_factory=dict)
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None
    line_runs: Mapping[str, Sequence[Sequence[int]]] | None = None


@dataclass(frozen=True)
class Manifest:
    """The partner's statement of what the file holds; every figure is optional but `records`."""

    location: str
    records: int
    accepted: int
    rejected: int
    lines: int | None = None
    rejected_by_reason: dict[str, int] | None = None
    accepted_amount_by_currency: dict[str, Decimal] | None = None


def balance_problems(counts: Counts) -> list[str]:
    """Every physical line is in exactly one record, and every record was written once.
    Counts carry thousands separators, so the log's masking never takes one for an account."""
    problems = []
    covered = counts.accepted_lines + counts.rejected_lines
    if counts.lines_read != covered:
        problems.append(
            f"lines after the header {counts.lines_read:,} != lines covered by accepted "
            f"({counts.accepted_lines:,}) + rejected ({counts.rejected_lines:,}) records "
            f"= {covered:,}"
        )
    if counts.records_read != counts.accepted + counts.rejected:
        problems.append(
            f"records read {counts.records_read:,} != accepted {counts.accepted:,} "
            f"+ rejected {counts.rejected:,} found in the tables"
        )
    return problems + tiling_problems(counts)


def tiling_problems(counts: Counts) -> list[str]:
    """Lines 2 .. lines_read + 1 (line 1 is the header) must each be covered by exactly one
    record of either table: the first line covered twice, the first covered by none, and
    covered lines that are not in the file are named.

    One sort of the runs, not of the records: numpy over a few runs per written file.
    """
    if counts.line_runs is None:
        return []
    tables, runs = _runs_of(counts.line_runs)
    order = np.lexsort((runs[:, 1], runs[:, 0]))
    tables, starts, ends = tables[order], runs[order, 0], runs[order, 1]
    last_line = counts.lines_read + 1
    problems = []
    outside = np.flatnonzero((starts < 2) | (ends > last_line))
    if len(outside):
        first = outside[0]
        problems.append(
            f"{_lines_are(starts[first], ends[first])} covered by {tables[first]} but the "
            f"file's lines after the header are 2-{last_line:,}"
        )
        inside = (ends >= 2) & (starts <= last_line)
        tables, starts, ends = tables[inside], starts[inside], ends[inside]
        starts, ends = np.maximum(starts, 2), np.minimum(ends, last_line)
    # reached[i]: the last line covered by the runs before run i (the header before any).
    reached = np.concatenate(([1], np.maximum.accumulate(ends)))
    gaps = np.flatnonzero(starts > reached[:-1] + 1)
    if len(gaps):
        problems.append(
            f"{_lines_are(reached[gaps[0]] + 1, starts[gaps[0]] - 1)} covered by no record"
        )
    elif reached[-1] < last_line:
        problems.append(f"{_lines_are(reached[-1] + 1, last_line)} covered by no record")
    overlaps = np.flatnonzero(starts <= reached[:-1])
    if len(overlaps):
        later = overlaps[0]
        # The one earlier run that reaches into it: two would already overlap each other.
        earlier = int(np.flatnonzero(ends[:later] >= starts[later])[0])
        both = (
            f"both in {tables[later]}"
            if tables[earlier] == tables[later]
            else f"{tables[earlier]} and {tables[later]}"
        )
        last = min(ends[earlier], ends[later])
        problems.append(f"{_lines_are(starts[later], last)} covered twice ({both})")
    return problems


def _runs_of(
    line_runs: Mapping[str, Sequence[Sequence[int]]],
) -> tuple[NDArray[np.str_], NDArray[np.int64]]:
    """Every file's runs as one (n, 2) array of [first, last], and the table of each."""
    names = np.array(list(line_runs), dtype=str)
    owner: list[NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    runs: list[NDArray[np.int64]] = [np.zeros((0, 2), dtype=np.int64)]
    for index, files in enumerate(line_runs.values()):
        for file_runs in files:
            pairs = np.asarray(file_runs, dtype=np.int64).reshape(-1, 2)
            runs.append(pairs)
            owner.append(np.full(len(pairs), index))
    return names[np.concatenate(owner)], np.concatenate(runs)


def _lines_are(first: int, last: int) -> str:
    """With thousands separators, so the log's masking leaves a line number >= 10,000,000."""
    return f"line {first:,} is" if first == last else f"lines {first:,}-{last:,} are"


def read_manifest(location: str) -> Manifest | None:
    """The manifest at a local path or S3 URI, checked; None when there is none.

    Read before anything is written: a malformed manifest fails the file with a message that
    names the problem, and nothing is written.
    """
    filesystem, path = resolve(location)
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        raw = stream.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        _malformed(location, f"not valid UTF-8 JSON: {error}")
    if not isinstance(document, dict):
        _malformed(location, "the top level is not a JSON object")
    return Manifest(
        location=location,
        **{name: _count(location, document, name) for name in _MANIFEST_COUNTS},
        lines=_count(location, document, "lines") if "lines" in document else None,
        rejected_by_reason=_mapping(location, document, "rejected_by_reason", _whole),
        accepted_amount_by_currency=_mapping(
            location, document, "accepted_amount_by_currency", _decimal
        ),
    )


def _malformed(location: str, detail: str) -> NoReturn:
    raise LandingFileError(
        location,
        "malformed manifest",
        detail,
        "Nothing was written. Fix or remove the manifest, then re-run",
    )


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        number = int(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a whole number") from error
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool | float) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not a decimal") from error
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return number


def _count(location: str, document: dict[str, Any], name: str) -> int:
    if name not in document:
        _malformed(location, f"the figure {name!r} is missing")
    try:
        return _whole(document[name])
    except ValueError as error:
        return _malformed(location, f"{name}: {error}")


def _mapping(location: str, document: dict[str, Any], name: str, convert: Any) -> Any:
    if name not in document:
        return None
    value = document[name]
    if not isinstance(value, dict):
        _malformed(location, f"{name} is not a JSON object")
    try:
        return {str(key): convert(item) for key, item in value.items()}
    except ValueError as error:
        return _malformed(location, f"{name}: {error}")


def manifest_problems(counts: Counts, manifest: Manifest) -> list[str]:
    """Differences between the ingest's figures and the manifest's, each named."""
    found = {
        "records": counts.accepted + counts.rejected,
        "accepted": counts.accepted,
        "rejected": counts.rejected,
    }
    problems = [
        f"{name}: manifest {getattr(manifest, name):,}, ingest {found[name]:,}"
        for name in _MANIFEST_COUNTS
        if getattr(manifest, name) != found[name]
    ]
    if manifest.lines is not None and manifest.lines != counts.lines_read:
        problems.append(f"lines: manifest {manifest.lines:,}, ingest {counts.lines_read:,}")
    if (
        manifest.rejected_by_reason is not None
        and manifest.rejected_by_reason != counts.rejected_by_reason
    ):
        problems.append(
            f"rejected by reason: manifest {manifest.rejected_by_reason}, "
            f"ingest {counts.rejected_by_reason}"
        )
    if manifest.accepted_amount_by_currency is not None:
        # A currency with nothing accepted may be listed as 0.00 on one side and absent on
        # the other: that is agreement, not a difference.
        expected_amounts = {k: v for k, v in manifest.accepted_amount_by_currency.items() if v}
        found_amounts = {k: v for k, v in counts.accepted_amount_by_currency.items() if v}
        if expected_amounts != found_amounts:
            problems.append(
                f"accepted amount by currency: manifest {expected_amounts}, ingest {found_amounts}"
            )
    return problems
