"""The audit tiles physical lines (issue 17) on a real ingest: the runs the tasks record per
written file cover every line after the header exactly once, and figures whose sums balance
but whose runs overlap and leave a gap are not published.
"""

from __future__ import annotations

import dataclasses

import pytest

from sluiceway.contract import HEADER_LINE
from sluiceway.generate import generate_landing_file
from sluiceway.ingest import ingest_file, stage
from sluiceway.ingest.reconcile import Counts, tiling_problems
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

pytestmark = pytest.mark.integration

ROW = "T{n},DE89001,M1,1.00,{currency},2026-11-25T10:00:00Z,settled,atm,6011,DE,x"


def capture_counts(monkeypatch: pytest.MonkeyPatch, change=lambda counts: counts) -> list[Counts]:
    """The Counts the stage hands to the audit, optionally changed on the way."""
    seen: list[Counts] = []
    real = stage.counts_of_files

    def spy(*args, **kwargs) -> Counts:
        seen.append(real(*args, **kwargs))
        return change(seen[-1])

    monkeypatch.setattr(stage, "counts_of_files", spy)
    return seen


def test_the_runs_of_a_real_ingest_cover_every_line_once(
    spark, isolated_settings, tmp_path, monkeypatch
):
    # Two 1 MiB chunks, quoted multi-line descriptions, every defect; duplicates make the
    # driver write their chunk again, whose new files must replace the old ones' runs.
    landing = tmp_path / "day.csv"
    manifest = generate_landing_file(landing, 12_000, seed=17, defect_rate=0.02)
    seen = capture_counts(monkeypatch)

    result = ingest_file(spark, isolated_settings, str(landing))

    assert result.status == "completed", result.message
    (counts,) = seen
    assert counts.line_runs is not None
    assert tiling_problems(counts) == []
    covered = [
        line
        for files in counts.line_runs.values()
        for runs in files
        for first, last in zip(runs[::2], runs[1::2], strict=True)
        for line in range(first, last + 1)
    ]
    assert sorted(covered) == list(range(2, manifest.lines + 2))
    # Merged: a rejected record adds at most one run to its table and splits one of the other.
    files = [runs for table_files in counts.line_runs.values() for runs in table_files]
    assert sum(len(runs) // 2 for runs in files) <= 2 * manifest.rejected + len(files)


def test_balanced_sums_with_a_line_covered_twice_and_one_by_none_are_not_published(
    spark, isolated_settings, tmp_path, monkeypatch, duckdb_query
):
    landing = tmp_path / "small.csv"
    rows = [ROW.format(n=n, currency="XXY" if n == 2 else "EUR") for n in (1, 2, 3)]
    landing.write_text("\n".join([HEADER_LINE, *rows]) + "\n")

    def shift_rejected_onto_line_2(counts: Counts) -> Counts:
        assert counts.line_runs == {TRANSACTIONS: [[2, 2, 4, 4]], REJECTED_RECORDS: [[3, 3]]}
        return dataclasses.replace(
            counts, line_runs={**counts.line_runs, REJECTED_RECORDS: [[2, 2]]}
        )

    capture_counts(monkeypatch, shift_rejected_onto_line_2)
    result = ingest_file(spark, isolated_settings, str(landing))

    assert (result.status, result.exit_code) == ("failed", 3)
    assert "line 3 is covered by no record" in result.message
    assert "line 2 is covered twice (transactions and rejected_records)" in result.message
    assert "lines after the header 3 !=" not in result.message  # the sums balance
    assert duckdb_query(isolated_settings, "SELECT COUNT(*) FROM transactions") == [(0,)]
