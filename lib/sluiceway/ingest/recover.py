"""Finish what an interrupted ingest decided: roll `publishing` ingests forward.

Why: `transactions`, `rejected_records` and `ingest_ledger` are three Iceberg tables, and
Iceberg commits one table at a time. The ingest's commit point is therefore the ledger row
`publishing`, written once the audit passed and holding the staged snapshot ids; the two
fast-forwards and the row `completed` follow. A run killed after the commit point leaves the
rest to the next writer: every writer (ingest, process, maintain) calls this right after
taking the lease and before it reads anything it decides on, so the duplicate check and
processing never see half an ingest, and the interrupted ingest ends `completed` with each
of its records once (docs/adr/0007-write-audit-publish.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluiceway.commits import TableCommits
from sluiceway.ingest import ledger
from sluiceway.ingest.publish import roll_forward
from sluiceway.logs import get_logger, log_event
from sluiceway.statuses import COMPLETED
from sluiceway.tables import INGEST_TABLES, REJECTED_RECORDS, TRANSACTIONS, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.lease import Fence
    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)


def ledger_entry_after_recovery(
    spark: SparkSession,
    settings: Settings,
    fence: Fence,
    ingest_id: str,
    say: Callable[[str], None] | None = None,
) -> tuple[TableCommits, ledger.LedgerEntry | None]:
    """A file or stream ingest's first steps under the lease: the tables made and observed,
    interrupted publications finished, then the ingest id's ledger row, read only now so that
    a publication this run just finished counts as `completed`."""
    ensure_tables(spark, settings, INGEST_TABLES)
    commits = TableCommits(spark, settings, fence)
    commits.observe(INGEST_TABLES)
    finish_interrupted_ingests(commits, say)
    return commits, ledger.find_entry(spark, settings, ingest_id)


def finish_interrupted_ingests(
    commits: TableCommits, say: Callable[[str], None] | None = None
) -> list[str]:
    """Publish every `publishing` ingest and mark it `completed`; their ingest ids."""
    finished = []
    for entry in ledger.publishing_entries(commits.spark, commits.settings):
        published = roll_forward(
            commits,
            entry.ingest_id,
            {
                TRANSACTIONS: entry.transactions_snapshot_id,
                REJECTED_RECORDS: entry.rejected_snapshot_id,
            },
        )
        job = commits.fence.holder.job
        ledger.record(
            commits,
            dataclasses.replace(
                entry,
                status=COMPLETED,
                transactions_snapshot_id=published[TRANSACTIONS],
                rejected_snapshot_id=published[REJECTED_RECORDS],
                message=f"{entry.message} (publication finished by {job} after an interruption)",
                finished_at=datetime.now(UTC),
            ),
        )
        message = f"finished the interrupted publication of {entry.ingest_id} ({entry.source_file})"
        log_event(LOGGER, message, ingest_id=entry.ingest_id, job=job)
        if say is not None:
            say(message)
        finished.append(entry.ingest_id)
    return finished
