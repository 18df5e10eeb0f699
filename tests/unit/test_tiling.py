"""The audit tiles physical lines (issue 17): the records' [line_number, last_line_number] of
both tables must cover lines 2 .. lines_read + 1 exactly once, not only add up to lines_read.
No Spark: the runs are the ones the tasks record per written file (`write.line_runs`).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from sluiceway.ingest.reconcile import Counts, balance_problems, tiling_problems
from sluiceway.ingest.write import line_runs
from sluiceway.logs import mask_text
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

pytestmark = pytest.mark.unit


def counts(lines_read: int, accepted: list[list[int]], rejected: list[list[int]]) -> Counts:
    """Figures whose sums balance; each inner list is one file's flattened runs."""
    return Counts(
        lines_read=lines_read,
        accepted=0,
        rejected=0,
        line_runs={TRANSACTIONS: accepted, REJECTED_RECORDS: rejected},
    )


def test_a_line_covered_twice_and_one_covered_by_none_fail_though_the_sums_balance() -> None:
    figures = Counts(
        lines_read=3, accepted=2, rejected=1, records_read=3, accepted_lines=2, rejected_lines=1,
        line_runs={TRANSACTIONS: [[2, 3]], REJECTED_RECORDS: [[3, 3]]},
    )  # fmt: skip
    assert balance_problems(figures) == [
        "line 4 is covered by no record",
        "line 3 is covered twice (transactions and rejected_records)",
    ]


def test_a_quoted_record_over_several_lines_and_files_per_day_tile_the_file() -> None:
    # Lines 3-5 are one rejected record; the accepted ones are in two day partitions.
    assert tiling_problems(counts(8, [[2, 2, 6, 7], [8, 9]], [[3, 5]])) == []


def test_a_record_written_twice_into_one_table_is_named_with_its_lines() -> None:
    """As a redone chunk would leave it if its first file were kept."""
    found = tiling_problems(counts(9, [[2, 10], [6, 7]], []))
    assert found == ["lines 6-7 are covered twice (both in transactions)"]


def test_the_first_gap_is_named_with_all_its_lines() -> None:
    found = tiling_problems(counts(99, [[2, 89], [92, 95]], [[96, 100]]))
    assert found == ["lines 90-91 are covered by no record"]
    assert tiling_problems(counts(5, [[2, 3]], [])) == ["lines 4-6 are covered by no record"]


def test_lines_that_are_not_in_the_file_are_named() -> None:
    assert tiling_problems(counts(2, [[1, 3]], [])) == [
        "lines 1-3 are covered by transactions but the file's lines after the header are 2-3"
    ]
    assert tiling_problems(counts(2, [[2, 3]], [[4, 4]])) == [
        "line 4 is covered by rejected_records but the file's lines after the header are 2-3"
    ]


def test_a_header_only_file_has_nothing_to_tile_and_figures_without_runs_are_not_tiled() -> None:
    assert tiling_problems(counts(0, [], [])) == []
    assert tiling_problems(counts(2, [], [])) == ["lines 2-3 are covered by no record"]
    assert tiling_problems(Counts(lines_read=2, accepted=0, rejected=0)) == []


def test_a_file_records_its_rows_as_merged_runs_keeping_a_line_covered_twice() -> None:
    rows = pa.table(
        {
            # Quoted records come after the plain ones in a chunk: not in line order.
            "line_number": pa.array([2, 3, 6, 9, 12, 5, 4], pa.int64()),  # 5 twice
            "last_line_number": pa.array([2, 3, 8, 10, 12, 5, 5], pa.int64()),
        }
    )
    assert line_runs(rows) == [2, 5, 5, 10, 12, 12]
    assert tiling_problems(counts(11, [line_runs(rows)], [[11, 11]])) == [
        "line 5 is covered twice (both in transactions)"
    ]


def test_line_numbers_of_a_30m_line_file_survive_the_log_s_masking() -> None:
    """Without thousands separators, line 12345678 reads as an account number to
    `logs.mask_text` and a log would print it as ****5678."""
    found = tiling_problems(counts(30_000_000, [[2, 12_345_677], [12_345_680, 30_000_001]], []))
    assert found == ["lines 12,345,678-12,345,679 are covered by no record"]
    assert [mask_text(problem) for problem in found] == found
