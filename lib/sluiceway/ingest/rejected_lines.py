"""The first rejected lines of given reasons, for a refusal's message (`file_policy`).

Apart from `file_policy` so that the command's argument parsing imports no Arrow.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.ingest.file_policy import FIRST_LINES


def first_lines_by_reason(
    rejected: Iterable[pa.Table], reasons: Collection[str], limit: int = FIRST_LINES
) -> dict[str, list[int]]:
    """The first `limit` line numbers per reason over tables with `line_number` and
    `reasons` columns (rejected records: staged files, or `check`'s chunks); each table is
    cut down to its own first lines at once, so a broken file's millions stay in Arrow."""
    wanted = pa.array(sorted(reasons), pa.string())
    found: dict[str, set[int]] = {reason: set() for reason in reasons}
    for table in rejected:
        lists = table.column("reasons").combine_chunks()
        flat = pc.list_flatten(lists)
        lines = pc.take(table.column("line_number"), pc.list_parent_indices(lists))
        keep = pc.is_in(flat, value_set=wanted)
        flat, lines = flat.filter(keep), lines.filter(keep)
        for reason in found:
            mine = lines.filter(pc.equal(flat, reason))
            if len(mine):  # select_k returns the indices of the smallest
                first = mine.take(pc.bottom_k_unstable(mine, min(limit, len(mine))))
                found[reason].update(first.to_pylist())
    return {reason: sorted(lines)[:limit] for reason, lines in found.items() if lines}
