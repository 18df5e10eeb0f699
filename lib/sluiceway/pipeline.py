"""The pipeline's steps as typed calls, shared by the `sluiceway` command and the job scripts.

The command and the jobs parse arguments (sluiceway.job_arguments) and print; which steps run
in which order, and which exit code a run ends with, is decided here once. Spark and the
step modules are imported on first use, so the command starts without a JVM or pyspark.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.errors import SluicewayError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.generate import Manifest
    from sluiceway.ingest import IngestResult
    from sluiceway.ingest.landing import LandingScanner
    from sluiceway.job_arguments import IngestArgs, MaintainArgs, ProcessArgs, RunArgs, StreamArgs
    from sluiceway.maintenance import TableMaintenance
    from sluiceway.processing import ProcessResult
    from sluiceway.settings import Settings
    from sluiceway.stream import StreamSummary

Progress = Callable[[str], None]
# The job whose driver JVM only ingests a file (`sluiceway ingest`, jobs/ingest_landing.py):
# its session gets the quick JIT (spark.QUICK_JIT); `sluiceway run` also processes, and not.
INGEST_JOB = "ingest"
STREAM_JOB = "stream"

# `sluiceway demo`: a small file with a few defects of every kind, then transactions by status.
DEMO_SEED = 7
DEMO_DEFECT_RATE = 0.002
DEMO_QUERY = (
    "SELECT status, COUNT(*) AS records FROM transactions GROUP BY status ORDER BY records DESC"
)


def run_step(program: str, step: Callable[[], int]) -> int:
    """Run a command or a job: a SluicewayError becomes one line on stderr and its exit code.

    The one exit-code rule of every entry point; results decide the code themselves
    (`IngestResult.exit_code`, `ProcessResult.exit_code`), errors carry theirs.
    """
    try:
        return step()
    except SluicewayError as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return error.exit_code


def start_spark(job: str, settings: Settings, progress: Progress | None = None) -> SparkSession:
    """The job's logs, a usable warehouse, then the session (Spark start takes seconds)."""
    _prepare(job, settings)
    return _session(job, settings, progress)


def _prepare(job: str, settings: Settings) -> None:
    """Logs, a usable warehouse, and for a one-shot writer that would not wait, a free writer
    lease: a busy run exits before the JVM and the file's scan start, not seconds after."""
    from sluiceway.lease import refuse_if_busy
    from sluiceway.logs import configure_logging
    from sluiceway.warehouse import check_warehouse

    configure_logging(
        job, settings.log_level, log_format=settings.log_format, log_file=settings.log_file
    )
    check_warehouse(settings)
    if job != STREAM_JOB:  # a stream takes the lease per batch, and may start before it frees
        refuse_if_busy(settings, job)


def _session(job: str, settings: Settings, progress: Progress | None) -> SparkSession:
    from sluiceway.spark import build_session

    if progress:
        progress(f"starting Spark ({settings.profile} profile, warehouse {settings.warehouse})")
    return build_session(settings, app_name=f"sluiceway-{job}", quick_jit=job == INGEST_JOB)


def start_spark_reading(
    job: str, request: IngestArgs, progress: Progress | None = None
) -> tuple[SparkSession, LandingScanner]:
    """As `start_spark`, for an ingest: the landing file's scan starts first, so its threads
    hash the file and plan its chunks while the JVM starts. Pass the scanner to `ingest`."""
    from sluiceway.ingest import open_landing

    _prepare(job, request.settings)
    scanner = open_landing(request.settings, request.source, request.source_version)
    try:
        return _session(job, request.settings, progress), scanner
    except BaseException:
        scanner.close()
        raise


def ingest(
    spark: SparkSession,
    request: IngestArgs,
    progress: Progress | None = None,
    scanner: LandingScanner | None = None,
) -> IngestResult:
    """Ingest one landing file (jobs/ingest_landing.py, `sluiceway ingest`); `scanner`: its
    scan, if `start_spark_reading` started it."""
    from sluiceway.ingest import ingest_file

    return ingest_file(
        spark,
        request.settings,
        request.source,
        request.manifest,
        request.source_version,
        progress=progress,
        policy=request.file_policy,
        scanner=scanner,
    )


def process(spark: SparkSession, request: ProcessArgs) -> ProcessResult:
    """Process the selected accepted records (jobs/process_records.py, `sluiceway process`)."""
    from sluiceway.processing import process_records

    return process_records(
        spark, request.settings, request.options, ingest_id=request.ingest_id, source=request.source
    )


def stream(
    spark: SparkSession, request: StreamArgs, progress: Progress | None = None
) -> StreamSummary:
    """Stream a Kafka topic into the tables (jobs/stream_transactions.py, `sluiceway stream`)."""
    from sluiceway.stream import stream_topic

    return stream_topic(spark, request.settings, request.options, progress)


@dataclass(frozen=True)
class RunResult:
    """An ingest and, when it completed or had been done before, the processing of its records."""

    ingested: IngestResult
    processed: ProcessResult | None

    @property
    def exit_code(self) -> int:
        """The ingest's when it did not complete (nothing was processed), else the processing's."""
        return self.processed.exit_code if self.processed else self.ingested.exit_code


def ingest_then_process(
    spark: SparkSession,
    request: RunArgs,
    on_ingested: Callable[[IngestResult], None],
    progress: Progress | None = None,
    scanner: LandingScanner | None = None,
) -> RunResult:
    """What the state machine does, in one process: ingest, then process that ingest's records.

    `on_ingested` sees the ingest's result before processing starts, which can take a while.
    """
    from sluiceway.processing import process_records

    ingested = ingest(spark, request.landing, progress, scanner)
    on_ingested(ingested)
    if ingested.exit_code:
        return RunResult(ingested, None)
    settings = request.landing.settings
    processed = process_records(spark, settings, request.options, ingest_id=ingested.ingest_id)
    return RunResult(ingested, processed)


def maintain(spark: SparkSession, request: MaintainArgs) -> list[TableMaintenance]:
    """Maintain the requested tables (jobs/maintain_tables.py, `sluiceway maintain`)."""
    from sluiceway.maintenance import maintain_tables

    return maintain_tables(spark, request.settings, request.options, request.tables)


def run_query(settings: Settings, sql: str, output_format: str) -> str:
    """Analyst SQL over the tables, formatted as a table, CSV or JSON."""
    from sluiceway.query import query
    from sluiceway.query_output import format_frame
    from sluiceway.warehouse import check_warehouse

    check_warehouse(settings, writable=False)
    return format_frame(query(settings, sql), output_format)


@dataclass(frozen=True)
class DemoLanding:
    """The demo's landing file; `generated` is None when an earlier demo left it in place."""

    path: Path
    generated: Manifest | None


def demo_landing_file(
    data_dir: str | Path, records: int, progress: Callable[[int], None] | None = None
) -> DemoLanding:
    """The demo's sample file, generated once per size so a second demo only re-ingests it."""
    from sluiceway.generate import generate_landing_file

    path = Path(data_dir) / f"landing-demo-{records}.csv"
    if path.exists():
        return DemoLanding(path, None)
    manifest = generate_landing_file(
        path, records, seed=DEMO_SEED, defect_rate=DEMO_DEFECT_RATE, progress=progress
    )
    return DemoLanding(path, manifest)
