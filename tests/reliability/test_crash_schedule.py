"""A seeded schedule of kills, zombies and overlapping files; at the end each record exactly once.

Three landing files share ids (a, b and c overlap pairwise). A seeded random schedule ingests
them and runs processing, each run in its own process and each killed (SIGKILL) at a failpoint
the seed picks, or not at all; one run is made a zombie: paused at a failpoint while its lease
is taken from it (the lease file removed, as an expired DynamoDB lease looks to the next
writer) and the next run of the schedule goes ahead, then resumed. Finally every file is
ingested again and processing runs once more. DuckDB then reads `main`: every id once in
`transactions`, every physical line of every file in `transactions` or `rejected_records`
exactly once, every ledger row `completed`, and every accepted record with exactly one
processing outcome. `SLUICEWAY_CRASH_SEED` replays another schedule.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.ingest_jobs import start_ingest, wait_for
from fixtures.landing import write_landing
from fixtures.processing_records import process_job
from sluiceway.errors import ExitCode
from sluiceway.lease import lease_file
from sluiceway.settings import Settings

pytestmark = pytest.mark.reliability

SEED = int(os.environ.get("SLUICEWAY_CRASH_SEED", "20261206"))
INGEST_FAILPOINTS = (
    "after_ledger_started",
    "after_staged",
    "after_ledger_publishing",
    "after_transactions_commit",
    "after_rejected_commit",
    "after_ledger_completed",
)
PROCESS_FAILPOINTS = (
    "process_after_wave_written",
    "process_after_results_commit",
    "process_after_failures_commit",
)


@dataclass(frozen=True)
class Step:
    """One run of the schedule: an ingest of `landing`, or processing when it is None."""

    landing: Path | None
    failpoint: str  # "" runs to the end

    def start(self, settings: Settings, failpoint: str):
        if self.landing is None:
            return process_job(settings, "--commit-every", "150", failpoint=failpoint)
        return start_ingest(settings, self.landing, failpoint)

    def describe(self) -> str:
        what = self.landing.name if self.landing else "process"
        return f"{what}@{self.failpoint or 'end'}"


def schedule(rng: random.Random, files: list[Path]) -> list[Step]:
    steps = [Step(f, rng.choice((*INGEST_FAILPOINTS, ""))) for f in rng.sample(files, len(files))]
    steps.insert(rng.randrange(1, len(steps) + 1), Step(None, rng.choice(PROCESS_FAILPOINTS)))
    return steps


def run(step: Step, settings: Settings) -> None:
    job = step.start(settings, step.failpoint)
    output, errors = job.communicate(timeout=600)
    expected = -signal.SIGKILL if step.failpoint else ExitCode.OK
    assert job.returncode == expected, (step.describe(), output[-2000:], errors[-3000:])


def run_with_zombie(zombie: Step, pause: str, then: Step, settings: Settings, folder: Path) -> None:
    """`zombie` paused at `pause` loses its lease while `then` runs; then it resumes."""
    marker = folder / f"paused-{pause}"
    job = zombie.start(settings, f"pause@{pause}@{marker}")
    wait_for(marker, job, limit=600)
    lease_file(settings).unlink()
    run(then, settings)
    marker.unlink()
    output, errors = job.communicate(timeout=600)
    # Fenced before its next commit (6), or it had nothing left to commit (0).
    assert job.returncode in (ExitCode.OK, ExitCode.LEASE_LOST), (output, errors[-3000:])


def test_a_seeded_schedule_of_kills_and_zombies_leaves_each_record_exactly_once(
    settings, tmp_path, duckdb_query
):
    rng = random.Random(SEED)
    target = dataclasses.replace(settings, namespace=f"crash_schedule_{SEED}")
    files = [
        write_landing(tmp_path / "a.csv", range(0, 200), rejects=15),
        write_landing(tmp_path / "b.csv", range(150, 350), rejects=10),
        write_landing(tmp_path / "c.csv", range(300, 420)),
    ]
    steps = schedule(rng, files)
    zombie_at = rng.randrange(len(steps) - 1)
    zombie = steps[zombie_at]
    pause = rng.choice(INGEST_FAILPOINTS[:-1] if zombie.landing else PROCESS_FAILPOINTS)
    print("schedule:", [s.describe() for s in steps], "zombie:", zombie.describe(), pause)

    position = 0
    while position < len(steps):
        if position == zombie_at:
            run_with_zombie(zombie, pause, steps[position + 1], target, tmp_path)
            position += 2
        else:
            run(steps[position], target)
            position += 1
    for landing in files:
        run(Step(landing, ""), target)
    run(Step(None, ""), target)

    def one(sql: str) -> tuple:
        (row,) = duckdb_query(target, sql)
        return row

    assert one("SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM transactions") == (420, 420)
    lines = {str(f.resolve()): len(f.read_text().splitlines()) - 1 for f in files}
    covered = dict(
        duckdb_query(
            target,
            "SELECT source_file, SUM(last_line_number - line_number + 1) FROM ("
            " SELECT source_file, line_number, last_line_number FROM transactions UNION ALL"
            " SELECT source_file, line_number, last_line_number FROM rejected_records"
            ") GROUP BY source_file",
        )
    )
    assert covered == lines
    distinct_lines = one(
        "SELECT COUNT(*) FROM (SELECT DISTINCT source_file, line_number FROM ("
        " SELECT source_file, line_number FROM transactions UNION ALL"
        " SELECT source_file, line_number FROM rejected_records))"
    )
    assert distinct_lines == (sum(lines.values()),)
    statuses = duckdb_query(target, "SELECT status, COUNT(*) FROM ingest_ledger GROUP BY status")
    assert statuses == [("completed", 3)]
    outcomes = one(
        "SELECT COUNT(*), COUNT(DISTINCT ingest_id || '/' || transaction_id) FROM ("
        " SELECT ingest_id, transaction_id FROM processed_transactions UNION ALL"
        " SELECT ingest_id, transaction_id FROM processing_failures)"
    )
    assert outcomes == (420, 420)
