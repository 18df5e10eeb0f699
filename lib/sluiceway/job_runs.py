"""Each ingest and processing run's own wall time and workers, recorded in `job_runs`: what the
report's timings and cost come from.

Why a table of its own and not the results' timestamps: first-to-last result leaves out the
selection, the layout shuffle, the commits and the reconciliation, which the workers are billed
for just the same. A run's row is its last commit, fenced like every other
(`sluiceway.commits`): a run killed before it leaves its results but no row, and the report
says that run's time was not recorded rather than guessing it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from sluiceway.iceberg_files import write_parquet, write_target
from sluiceway.tables import JOB_RUNS, arrow_schema, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.commits import TableCommits

INGEST_STEP = "ingest"
PROCESS_STEP = "process"
RUN_PROPERTY = "sluiceway.job-run"


@dataclass(frozen=True)
class JobRun:
    """One finished run: which step, the ingests it worked on, where and on how many workers
    it ran, the records it handled, and its wall time from start to end."""

    step: str
    ingest_ids: tuple[str, ...]
    compute: str
    workers: int
    records: int
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def rows(self) -> pa.Table:
        """The run as `job_runs` rows, one per ingest it worked on."""
        return pa.Table.from_pylist(
            [
                {
                    "run_id": self.run_id,
                    "step": self.step,
                    "ingest_id": ingest_id,
                    "run_ingests": len(self.ingest_ids),
                    "compute": self.compute,
                    "workers": self.workers,
                    "records": self.records,
                    "started_at": self.started_at,
                    "finished_at": self.finished_at,
                    "duration_seconds": self.duration_seconds,
                }
                for ingest_id in self.ingest_ids
            ],
            schema=arrow_schema(JOB_RUNS),
        )


def spark_workers(spark: SparkSession) -> int:
    """The Spark processes the run has now, driver included: a Glue job's workers (one of
    them is the driver), an EMR Serverless job's driver and executors, one container or
    machine in local mode."""
    return int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size())


def record_job_run(commits: TableCommits, run: JobRun) -> None:
    """Append the run's rows to `job_runs`, fenced; nothing for a run that touched no ingest."""
    if not run.ingest_ids:
        return
    spark, settings = commits.spark, commits.settings
    if JOB_RUNS not in commits.heads:
        ensure_tables(spark, settings, (JOB_RUNS,))
        commits.observe((JOB_RUNS,))
    target = write_target(spark, settings, JOB_RUNS)
    written = write_parquet(run.rows(), target, None, f"{run.step}-{run.run_id}")
    commits.append(JOB_RUNS, [written], {RUN_PROPERTY: run.run_id})
