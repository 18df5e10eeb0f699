"""The ledger read with Arrow from the files Iceberg plans: the rows Spark reads, no Spark job.

An ingest reads the ledger before its tasks (interrupted publications, its own row) and
between them (completed ingests for `already_ingested`); each read used to be a Spark job.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluiceway.commits import TableCommits
from sluiceway.iceberg_files import read_columns
from sluiceway.ingest import ledger
from sluiceway.lease import writer_lease
from sluiceway.statuses import COMPLETED, PUBLISHING, STARTED
from sluiceway.tables import INGEST_LEDGER, INGEST_TABLES, ensure_tables

pytestmark = pytest.mark.integration

STARTED_AT = datetime(2026, 11, 25, 6, 30, 1, 250_000, tzinfo=UTC)


def entries() -> list[ledger.LedgerEntry]:
    """Rows of every shape: maps with decimals, empty maps, nulls, each status."""
    done = ledger.LedgerEntry(
        "ing_done", "a.csv", "aa", COMPLETED, STARTED_AT,
        lines_read=5, accepted=4, rejected=1, accepted_lines=4, rejected_lines=1,
        rejected_by_reason={"bad_amount": 1},
        accepted_amount_by_currency={"EUR": Decimal("10.25"), "USD": Decimal("-3.00")},
        accepted_count_by_currency={"EUR": 3, "USD": 1},
        message="ingested", manifest_checked=True, transactions_snapshot_id=11,
        first_event_time=datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC),
        last_event_time=datetime(2026, 11, 25, tzinfo=UTC),
        finished_at=datetime(2026, 11, 25, 6, 31, tzinfo=UTC), duration_seconds=59.5,
        rule_version="transactions@1",
    )  # fmt: skip
    return [
        done,
        ledger.LedgerEntry(
            "ing_pub",
            "b.csv",
            "bb",
            PUBLISHING,
            STARTED_AT,
            transactions_snapshot_id=21,
            rejected_snapshot_id=22,
        ),
        ledger.LedgerEntry("ing_new", "c.csv", "cc", STARTED, STARTED_AT),
        dataclasses.replace(done, ingest_id="ing_done2", source_file="d.csv", sha256="dd"),
    ]


@pytest.fixture
def written_ledger(spark, isolated_settings):
    settings = isolated_settings
    ensure_tables(spark, settings, INGEST_TABLES)
    with writer_lease(settings, "ingest") as fence:
        commits = TableCommits(spark, settings, fence)
        commits.observe(INGEST_TABLES)
        for entry in entries():
            ledger.record(commits, entry)
    return settings


def spark_reads(spark, settings, where: str) -> list[ledger.LedgerEntry]:
    """The rows as Spark reads them, its naive timestamps given their zone (UTC)."""
    rows = spark.table(settings.table(INGEST_LEDGER)).where(where).collect()
    found = []
    for row in rows:
        values = {
            name: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
            for name, value in row.asDict().items()
        }
        found.append(ledger.LedgerEntry(**values))
    return sorted(found, key=lambda entry: entry.ingest_id)


def test_the_ledger_read_with_arrow_gives_the_rows_spark_reads(spark, written_ledger):
    settings = written_ledger
    for entry in entries():
        assert ledger.find_entry(spark, settings, entry.ingest_id) == entry
        assert [ledger.find_entry(spark, settings, entry.ingest_id)] == spark_reads(
            spark, settings, f"ingest_id = '{entry.ingest_id}'"
        )
    assert ledger.find_entry(spark, settings, "ing_unknown") is None
    for status in (COMPLETED, PUBLISHING, STARTED, "failed"):
        read = sorted(
            ledger.entries_with_status(spark, settings, status), key=lambda e: e.ingest_id
        )
        assert read == spark_reads(spark, settings, f"status = '{status}'")
    assert [e.ingest_id for e in ledger.publishing_entries(spark, settings)] == ["ing_pub"]


def test_reading_the_ledger_runs_no_spark_job(spark, written_ledger):
    settings = written_ledger
    context = spark.sparkContext
    context.setJobGroup("ledger-reads", "the ledger read by an ingest")
    try:
        assert ledger.find_entry(spark, settings, "ing_done") is not None
        assert len(ledger.publishing_entries(spark, settings)) == 1
        assert len(ledger.entries_with_status(spark, settings, COMPLETED)) == 2
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert list(context.statusTracker().getJobIdsForGroup("ledger-reads")) == []


def test_a_column_added_after_a_file_was_written_reads_as_null(tmp_path):
    """A ledger file written by an older release, before `rule_version` existed."""
    schema = pa.schema([("ingest_id", pa.string()), ("rule_version", pa.string())])
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(pa.table({"ingest_id": ["ing_old"]}), old)
    pq.write_table(pa.table({"ingest_id": ["ing_new"], "rule_version": ["v2"]}), new)
    read = read_columns([str(old), str(new)], schema)
    assert read.schema == schema
    assert read.to_pylist() == [
        {"ingest_id": "ing_old", "rule_version": None},
        {"ingest_id": "ing_new", "rule_version": "v2"},
    ]


def test_the_spark_read_of_a_ledger_with_delete_files_gives_the_same_entries(
    spark, written_ledger, monkeypatch: pytest.MonkeyPatch
):
    """When Iceberg plans delete files, Spark reads the ledger (it applies them): the same
    entries, timestamps as UTC instants too. The planner is made to say so here."""
    settings = written_ledger
    monkeypatch.setattr(ledger, "data_files_equal", lambda *_args: None)
    for entry in entries():
        assert ledger.find_entry(spark, settings, entry.ingest_id) == entry
    assert [e.ingest_id for e in ledger.publishing_entries(spark, settings)] == ["ing_pub"]
