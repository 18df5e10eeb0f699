"""Data files written by the ingest's tasks -> Iceberg snapshots, staged, audited, published.

Why Iceberg's Java API (through the Spark session's own catalog, Hadoop locally and the Glue
Data Catalog on AWS) and not Spark's writer: the tasks already hold each chunk's records as
Arrow and write Parquet themselves; handing them back to Spark as rows is what made the
ingest 20x slower than DuckDB. Here the driver only registers files: it reads each file's
footer for column metrics (so Athena and Spark prune files), appends them as a *staged*
snapshot that `main` does not reference (write-audit-publish), tagged with this attempt's
commit id, and fast-forwards `main` to that snapshot only after the audit and after the
ledger recorded the decision (`publishing`). `sluiceway.commits` refuses a publish whose
parent is not where this run left `main`. See docs/adr/0007-write-audit-publish.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluiceway import failpoints
from sluiceway.iceberg_files import WrittenFile, iceberg_table
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.commits import TableCommits
    from sluiceway.settings import Settings

INGEST_ID_PROPERTY = "sluiceway.ingest-id"
# The failpoint after each table's publish, in publishing order (lib/sluiceway/failpoints.py).
PUBLISH_ORDER = (
    (TRANSACTIONS, "after_transactions_commit"),
    (REJECTED_RECORDS, "after_rejected_commit"),
)


def stage_files(
    commits: TableCommits, name: str, files: list[WrittenFile], ingest_id: str
) -> int | None:
    """Append the files as a snapshot that `main` does not reference yet; its id, or None."""
    return commits.stage_append(name, files, {INGEST_ID_PROPERTY: ingest_id})


def staged_record_count(
    spark: SparkSession, settings: Settings, name: str, snapshot_id: int | None
) -> int:
    """Records the staged snapshot adds, from Iceberg's own metadata (the audit's check)."""
    if snapshot_id is None:
        return 0
    table = iceberg_table(spark, settings, name)
    summary = table.snapshot(snapshot_id).summary()
    return int(summary.get("added-records") or 0)


def publish(commits: TableCommits, ingest_id: str, snapshots: dict[str, int | None]) -> None:
    """Fast-forward `main` of transactions, then rejected_records, to this attempt's staged
    snapshots (the ledger says `publishing` already, so an interruption is rolled forward)."""
    for name, failpoint in PUBLISH_ORDER:
        snapshot = snapshots[name]
        if snapshot is not None:
            commits.publish(name, snapshot, f"{name} of {ingest_id}")
        failpoints.reach(commits.settings, failpoint)


def roll_forward(
    commits: TableCommits, ingest_id: str, snapshots: dict[str, int | None]
) -> dict[str, int | None]:
    """Publish what an interrupted run decided to publish; the snapshot ids now on `main`."""
    return {
        name: None
        if snapshot is None
        else commits.roll_forward(name, snapshot, f"{name} of {ingest_id}")
        for name, snapshot in snapshots.items()
    }
