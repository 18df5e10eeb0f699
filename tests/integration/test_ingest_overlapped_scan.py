"""Tasks start while the driver still plans chunks (issue 19, item 2): the same tables as a
run whose plan was complete first, the ledger row before any task, and a skip writes nothing.
The command starts the scan before Spark, so hashing and planning overlap the JVM's start."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from sluiceway import ingest as ingest_package
from sluiceway import pipeline
from sluiceway.generate import generate_landing_file
from sluiceway.ingest import ingest_file, landing, open_landing, stage
from sluiceway.job_arguments import IngestArgs
from sluiceway.statuses import COMPLETED, SKIPPED, STARTED
from sluiceway.tables import INGEST_LEDGER, REJECTED_RECORDS, TRANSACTIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_planner(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small blocks and a planner slower than the reader: the plan is still being cut when
    the tasks start. Returns the number of chunks of each Spark round."""
    monkeypatch.setattr(landing, "BLOCK_BYTES", 256 << 10)
    feed = landing._ChunkPlanner.feed

    def slow_feed(self: landing._ChunkPlanner, block: bytes, at_end: bool = False) -> None:
        if self.header is not None and block:
            time.sleep(0.15)
        feed(self, block, at_end)

    monkeypatch.setattr(landing._ChunkPlanner, "feed", slow_feed)
    rounds: list[int] = []
    collect = stage._collect_files

    def counted(spark, plan, chunks):  # type: ignore[no-untyped-def]
        rounds.append(len(chunks))
        return collect(spark, plan, chunks)

    monkeypatch.setattr(stage, "_collect_files", counted)
    return rounds


def table_rows(spark, settings, table: str, columns: str) -> list:
    return sorted(spark.sql(f"SELECT {columns} FROM {settings.table(table)}").collect())


def test_rounds_started_before_the_plan_was_complete_give_the_tables_of_one_round(
    spark, isolated_settings, tmp_path: Path, slow_planner: list[int]
) -> None:
    landing_file = tmp_path / "landing.csv"
    manifest = generate_landing_file(landing_file, 30_000, seed=19, defect_rate=0.03)
    settings = dataclasses.replace(isolated_settings, parse_chunk_mb=1)
    ledger_rows_when_tasks_ran: list[list[str]] = []
    collect = stage._collect_files

    def after_ledger(spark_, plan, chunks):  # type: ignore[no-untyped-def]
        rows = spark.sql(f"SELECT status FROM {settings.table(INGEST_LEDGER)}").collect()
        ledger_rows_when_tasks_ran.append([row.status for row in rows])
        return collect(spark_, plan, chunks)

    stage._collect_files = after_ledger  # restored by the fixture's monkeypatch
    result = ingest_file(spark, settings, str(landing_file))
    assert result.status == COMPLETED, result.message
    assert "manifest matched" in result.message
    assert len(slow_planner) > 1, "the plan was complete before the first round"
    assert sum(slow_planner) >= 3
    assert all(statuses == [STARTED] for statuses in ledger_rows_when_tasks_ran)
    assert (result.lines_read, result.accepted + result.rejected) == (
        manifest.lines,
        manifest.records,
    )
    assert result.rejected_by_reason == dict(manifest.rejected_by_reason)

    # The same file again with the plan complete before the tasks: identical tables.
    planned_first = dataclasses.replace(settings, namespace=settings.namespace + "_whole")
    whole = landing.LandingScanner.planned

    def all_at_once(self, at_least: int = 1):  # type: ignore[no-untyped-def]
        self.result()
        yield from whole(self, at_least)

    landing.LandingScanner.planned = all_at_once  # type: ignore[method-assign]
    try:
        again = ingest_file(spark, planned_first, str(landing_file))
    finally:
        landing.LandingScanner.planned = whole  # type: ignore[method-assign]
    assert again.status == COMPLETED
    columns = "transaction_id, line_number, amount, event_time"
    assert table_rows(spark, settings, TRANSACTIONS, columns) == table_rows(
        spark, planned_first, TRANSACTIONS, columns
    )
    rejected = "line_number, last_line_number, raw_line, reasons"
    assert table_rows(spark, settings, REJECTED_RECORDS, rejected) == table_rows(
        spark, planned_first, REJECTED_RECORDS, rejected
    )


def test_an_already_ingested_file_stops_the_planner_and_writes_nothing(
    spark, isolated_settings, tmp_path: Path, slow_planner: list[int]
) -> None:
    landing_file = tmp_path / "landing.csv"
    generate_landing_file(landing_file, 20_000, seed=20)
    settings = dataclasses.replace(isolated_settings, parse_chunk_mb=1)
    assert ingest_file(spark, settings, str(landing_file)).status == COMPLETED
    data = Path(settings.warehouse)
    files_before = sorted(str(path) for path in data.rglob("*.parquet"))
    rounds_before = len(slow_planner)
    threads_before = threading.active_count()
    again = ingest_file(spark, settings, str(landing_file))
    assert again.status == SKIPPED
    assert len(slow_planner) == rounds_before, "a skipped ingest ran tasks"
    assert sorted(str(path) for path in data.rglob("*.parquet")) == files_before
    assert threading.active_count() <= threads_before, "the planner thread was left running"


def test_the_command_starts_the_scan_before_spark_and_the_ingest_uses_it(
    spark, isolated_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing_file = tmp_path / "landing.csv.gz"
    manifest = generate_landing_file(landing_file, 5_000, seed=21, compress=True)
    steps: list[str] = []
    opened: list[landing.LandingScanner] = []

    def scan_opened(*args):  # type: ignore[no-untyped-def]
        scanner = open_landing(*args)
        steps.append("scan")
        opened.append(scanner)
        return scanner

    def session(job, settings, progress):  # type: ignore[no-untyped-def]
        opened[0].identity()  # the file is read whole while "Spark starts"
        steps.append("spark")
        return spark

    monkeypatch.setattr(pipeline, "_prepare", lambda job, settings: steps.append("prepare"))
    monkeypatch.setattr(ingest_package, "open_landing", scan_opened)
    monkeypatch.setattr(pipeline, "_session", session)
    request = IngestArgs(str(landing_file), None, None, isolated_settings)
    session_, scanner = pipeline.start_spark_reading("ingest", request)
    assert steps == ["prepare", "scan", "spark"]
    result = pipeline.ingest(session_, request, scanner=scanner)
    assert result.status == COMPLETED, result.message
    assert result.accepted + result.rejected == manifest.records
    assert not any(thread.is_alive() for thread in scanner.threads)
    staged = Path(isolated_settings.staging_location())
    assert not list(staged.rglob("*.csv")), "the unpacked copy of the gzip file was left"


def test_a_spark_that_fails_to_start_leaves_no_scan_running(
    isolated_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing_file = tmp_path / "landing.csv.gz"
    generate_landing_file(landing_file, 5_000, seed=22, compress=True)
    opened: list[landing.LandingScanner] = []

    def scan_opened(*args):  # type: ignore[no-untyped-def]
        opened.append(open_landing(*args))
        return opened[-1]

    def no_session(job, settings, progress):  # type: ignore[no-untyped-def]
        opened[0].identity()
        raise RuntimeError("Java gateway process exited before sending its port number")

    monkeypatch.setattr(pipeline, "_prepare", lambda job, settings: None)
    monkeypatch.setattr(ingest_package, "open_landing", scan_opened)
    monkeypatch.setattr(pipeline, "_session", no_session)
    request = IngestArgs(str(landing_file), None, None, isolated_settings)
    with pytest.raises(RuntimeError, match="Java gateway"):
        pipeline.start_spark_reading("ingest", request)
    assert not any(thread.is_alive() for thread in opened[0].threads)
    staged = Path(isolated_settings.staging_location())
    assert not list(staged.rglob("*.csv")), "the unpacked copy of the gzip file was left"
