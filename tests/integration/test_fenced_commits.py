"""Fenced commits on real Iceberg tables: what `sluiceway.commits` refuses and why.

Each test holds the real (local) writer lease, as a job does, and plays a second writer by
committing to the same table through Spark in between.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sluiceway.commits import COMMIT_PROPERTY, LEASE_TOKEN_PROPERTY, TableCommits
from sluiceway.iceberg_files import (
    data_file,
    data_files,
    iceberg_table,
    without_file_scheme,
    write_by_day,
    write_target,
)
from sluiceway.ingest import ledger
from sluiceway.ingest.publish import stage_files
from sluiceway.lease import LeaseLostError, lease_file, writer_lease
from sluiceway.statuses import STARTED
from sluiceway.tables import INGEST_LEDGER, TRANSACTIONS, ensure_tables

pytestmark = pytest.mark.integration


def transaction_files(spark, settings, name: str) -> list:
    """Two transactions of ingest `name`, written as a task writes them."""
    target = write_target(spark, settings, TRANSACTIONS)
    values = {
        "transaction_id": [f"{name}-1", f"{name}-2"],
        "ingest_id": [name, name],
        "event_time": [datetime(2026, 11, 25, 10, tzinfo=UTC)] * 2,
    }
    columns = [pa.array(values.get(f.name, [None, None]), f.type) for f in target.schema]
    return write_by_day(pa.Table.from_arrays(columns, schema=target.schema), target, name)


def other_writer_appends(spark, settings) -> None:
    """A plain Iceberg append of two rows by someone else, straight onto `main`."""
    table = iceberg_table(spark, settings, TRANSACTIONS)
    table.refresh()
    append = table.newAppend()
    for written in transaction_files(spark, settings, "other"):
        append.appendFile(data_file(spark, table, written))
    append.commit()


def main_rows(spark, settings) -> int:
    spark.sql(f"REFRESH TABLE {settings.table(TRANSACTIONS)}")
    return spark.table(settings.table(TRANSACTIONS)).count()


def test_a_commit_staged_after_another_writer_moved_main_is_refused(spark, isolated_settings):
    """A zombie staging on top of its successor's commit: the parent is not where it left main."""
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS,))
    with writer_lease(settings, "ingest") as fence:
        commits = TableCommits(spark, settings, fence)
        commits.observe((TRANSACTIONS,))
        other_writer_appends(spark, settings)
        staged = stage_files(commits, TRANSACTIONS, transaction_files(spark, settings, "a"), "a")
        assert staged is not None
        with pytest.raises(LeaseLostError, match="main of transactions moved since this run"):
            commits.publish(TRANSACTIONS, staged, "transactions of a")
    assert main_rows(spark, settings) == 2, "only the other writer's rows"


def test_a_publish_after_another_writer_moved_main_is_refused_by_iceberg_not_reapplied(
    spark, isolated_settings
):
    """A cherry-pick would re-add the staged files on top; the fast-forward refuses."""
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS,))
    with writer_lease(settings, "ingest") as fence:
        commits = TableCommits(spark, settings, fence)
        commits.observe((TRANSACTIONS,))
        staged = stage_files(commits, TRANSACTIONS, transaction_files(spark, settings, "a"), "a")
        assert staged is not None
        other_writer_appends(spark, settings)
        with pytest.raises(LeaseLostError, match="Iceberg refused the commit"):
            commits.publish(TRANSACTIONS, staged, "transactions of a")
    assert main_rows(spark, settings) == 2, "only the other writer's rows: none re-added"


def test_each_attempt_publishes_the_snapshot_it_staged_not_the_newest_of_its_ingest(
    spark, isolated_settings
):
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS,))
    with writer_lease(settings, "ingest") as fence:
        commits = TableCommits(spark, settings, fence)
        commits.observe((TRANSACTIONS,))
        mine = stage_files(commits, TRANSACTIONS, transaction_files(spark, settings, "x"), "ing_x")
        # A killed attempt of the same ingest staged later (or with a clock ahead).
        later = stage_files(commits, TRANSACTIONS, transaction_files(spark, settings, "y"), "ing_x")
        assert mine is not None and later is not None and mine != later
        commits.publish(TRANSACTIONS, mine, "transactions of ing_x")
        table = iceberg_table(spark, settings, TRANSACTIONS)
        table.refresh()
        summary = table.currentSnapshot().summary()
        assert int(table.currentSnapshot().snapshotId()) == mine
        assert summary.get(LEASE_TOKEN_PROPERTY) == fence.token
        assert summary.get(COMMIT_PROPERTY)
    rows = spark.table(settings.table(TRANSACTIONS)).select("transaction_id").collect()
    assert sorted(r.transaction_id for r in rows) == ["x-1", "x-2"]


def test_a_ledger_row_is_not_overwritten_by_a_writer_that_lost_its_lease(spark, isolated_settings):
    """The zombie's next ledger write stops at the lease; with the lease restored (a clock
    off, say), Iceberg's check on `main` stops it."""
    settings = isolated_settings
    ensure_tables(spark, settings, (INGEST_LEDGER,))
    entry = ledger.LedgerEntry("ing_z", "z.csv", "00", STARTED, datetime.now(UTC))
    with writer_lease(settings, "ingest") as zombie:
        zombie_commits = TableCommits(spark, settings, zombie)
        zombie_commits.observe((INGEST_LEDGER,))
        ledger.record(zombie_commits, entry)
        held = lease_file(settings).read_text()
        lease_file(settings).unlink()
        with writer_lease(settings, "ingest") as successor:
            commits = TableCommits(spark, settings, successor)
            commits.observe((INGEST_LEDGER,))
            ledger.record(commits, dataclasses.replace(entry, status="completed"))
        with pytest.raises(LeaseLostError, match="writer lease"):
            ledger.record(zombie_commits, entry)
        lease_file(settings).write_text(held)
        with pytest.raises(LeaseLostError, match="main of ingest_ledger moved"):
            ledger.record(zombie_commits, entry)
    found = ledger.find_entry(spark, settings, "ing_z")
    assert found is not None and found.status == "completed"
    assert spark.table(settings.table(INGEST_LEDGER)).count() == 1


def test_an_interrupted_publication_is_rolled_forward_once_even_after_main_moved(
    spark, isolated_settings
):
    """The ledger said `publishing`; someone outside sluiceway (an Athena INSERT, a manual
    compaction) moved `main` before the next writer: the staged files are added once."""
    from sluiceway.ingest.recover import finish_interrupted_ingests
    from sluiceway.statuses import PUBLISHING
    from sluiceway.tables import INGEST_TABLES

    settings = isolated_settings
    ensure_tables(spark, settings, INGEST_TABLES)
    entry = ledger.LedgerEntry("ing_r", "r.csv", "00", STARTED, datetime.now(UTC))
    with writer_lease(settings, "ingest") as fence:
        commits = TableCommits(spark, settings, fence)
        commits.observe(INGEST_TABLES)
        staged = stage_files(commits, TRANSACTIONS, transaction_files(spark, settings, "r"), "r")
        ledger.record(
            commits,
            dataclasses.replace(entry, status=PUBLISHING, transactions_snapshot_id=staged),
        )  # ... and the run dies here
    other_writer_appends(spark, settings)
    for _attempt in range(2):  # the next writer, and the one after it
        with writer_lease(settings, "process") as fence:
            commits = TableCommits(spark, settings, fence)
            commits.observe(INGEST_TABLES)
            finish_interrupted_ingests(commits)
    assert main_rows(spark, settings) == 4
    found = ledger.find_entry(spark, settings, "ing_r")
    assert found is not None and found.status == "completed"


def test_footers_read_together_describe_each_file_as_one_read_alone(spark, isolated_settings):
    """`data_files` reads footers from several threads: the same DataFiles, in input order."""
    settings = isolated_settings
    ensure_tables(spark, settings, (TRANSACTIONS,))
    table = iceberg_table(spark, settings, TRANSACTIONS)
    written = [file for name in "abcdefgh" for file in transaction_files(spark, settings, name)]

    def described(files: list) -> list[tuple]:
        return [
            (
                str(file.path()),
                file.recordCount(),
                str(file.partition()),
                dict(file.lowerBounds()),
                dict(file.upperBounds()),
            )
            for file in files
        ]

    together = described(data_files(spark, table, written))
    assert together == described([data_file(spark, table, file) for file in written])
    assert [without_file_scheme(path) for path, *_ in together] == [
        without_file_scheme(file.path) for file in written
    ]
