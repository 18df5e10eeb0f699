"""A wave's outcome, as its tasks reported it, committed: results, then dead letters.

The tasks wrote the files; the driver registers only those of the task attempts Spark kept
(the rows `collect` returned), so a re-run task cannot give a record two outcomes. Results
and dead letters are two tables, so two commits; a kill between them leaves the wave's dead
letters uncommitted, and those records are pending for the next run, which decides them
again. No record can be in both tables, because a run only processes records with neither.
See docs/adr/0005-idempotent-processing-results.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluiceway import failpoints
from sluiceway.iceberg_files import WrittenFile
from sluiceway.processing.metrics import RunMetrics
from sluiceway.processing.outcomes import BATCH, FILE, PENDING_CAUSE
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

if TYPE_CHECKING:
    from pyspark.sql import Row

    from sluiceway.commits import TableCommits

# The failpoints of a wave's commit, in order (see lib/sluiceway/failpoints.py).
AFTER_WAVE_WRITTEN = "process_after_wave_written"
AFTER_RESULTS_COMMIT = "process_after_results_commit"
AFTER_FAILURES_COMMIT = "process_after_failures_commit"
WAVE_PROPERTY = "sluiceway.process-wave"
# RunMetrics' counters from the columns of a task's batch rows.
BATCH_COUNTS = {
    "records_ok": "ok",
    "records_failed": "failed",
    "records_pending": "pending",
    "records_retried": "retried",
    "attempts": "attempts",
}


@dataclass
class WaveOutcome:
    """What a wave's tasks reported: their files per table, counts, and why records are
    pending ("" when none are)."""

    files: dict[str, list[WrittenFile]] = field(default_factory=dict)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    pending_cause: str = ""


def read_wave(rows: list[Row]) -> WaveOutcome:
    """The wave's outcome from its tasks' summary rows (processing/outcomes.py)."""
    files: dict[str, list[WrittenFile]] = {PROCESSED_TRANSACTIONS: [], PROCESSING_FAILURES: []}
    for row in rows:
        if row.kind == FILE:
            files[row.table].append(WrittenFile(row.path, row.partition))
    batches = [row for row in rows if row.kind == BATCH]
    metrics = RunMetrics(
        **{name: sum(row[column] for row in batches) for name, column in BATCH_COUNTS.items()},
        batch_latencies_ms=[row.latency_ms for row in batches],
    )
    causes = [f"{row.error_class}: {row.error_message}"[:300] for row in rows
              if row.kind == PENDING_CAUSE]  # fmt: skip
    return WaveOutcome(files, metrics, causes[0] if causes else "")


def commit_wave(commits: TableCommits, wave: WaveOutcome, label: str) -> None:
    """Append the wave's results, then its dead letters (one fenced commit each: a run that
    lost its lease, or whose tables another writer changed, stops before either)."""
    settings = commits.settings
    failpoints.reach(settings, AFTER_WAVE_WRITTEN)
    properties = {WAVE_PROPERTY: label}
    commits.append(PROCESSED_TRANSACTIONS, wave.files[PROCESSED_TRANSACTIONS], properties)
    failpoints.reach(settings, AFTER_RESULTS_COMMIT)
    commits.append(PROCESSING_FAILURES, wave.files[PROCESSING_FAILURES], properties)
    failpoints.reach(settings, AFTER_FAILURES_COMMIT)
