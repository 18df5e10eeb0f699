"""The audit of a staged ingest, then publish it or discard it: write-audit-publish's last two
steps (docs/adr/0007-write-audit-publish.md).

A failed ingest is never published (its staged snapshots stay off `main` and its files are
deleted), so a corrected resend is not rejected as `already_ingested` and nothing
half-checked reaches processing or analysts. The ledger row that follows is the run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from sluiceway import failpoints
from sluiceway.ingest.publish import publish
from sluiceway.ingest.reconcile import Manifest, balance_problems, manifest_problems
from sluiceway.ingest.stage import StagedIngest, delete_files
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED, FAILED
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS


@dataclass(frozen=True)
class AuditOutcome:
    """`completed` (published) or `failed` (discarded), the ledger message, the snapshots."""

    status: str
    message: str
    manifest_checked: bool
    transactions_snapshot: int | None
    rejected_snapshot: int | None


def audit_and_publish(
    spark: SparkSession,
    settings: Settings,
    staged: StagedIngest,
    manifest: Manifest | None,
    say: Callable[[str], None],
) -> AuditOutcome:
    """Audit the staged figures (and the manifest's); publish both tables, or delete the files."""
    counts = staged.counts
    problems = balance_problems(counts)
    if manifest is not None:
        problems += manifest_problems(counts, manifest)
    status = FAILED if problems else COMPLETED
    if problems:
        message = "reconciliation failed: " + "; ".join(problems) + "; nothing was published"
        delete_files(staged.files)
    else:
        published = publish(spark, settings, TRANSACTIONS, staged.transactions_snapshot)
        failpoints.reach(settings, "after_transactions_commit")
        published_rejected = publish(spark, settings, REJECTED_RECORDS, staged.rejected_snapshot)
        failpoints.reach(settings, "after_rejected_commit")
        say("audited and published to transactions and rejected_records")
        message = (
            f"ingested {counts.lines_read} lines: {counts.accepted} records accepted, "
            f"{counts.rejected} rejected" + (" (manifest matched)" if manifest else "")
        )
    snapshots = (None, None) if problems else (published, published_rejected)
    return AuditOutcome(status, message, manifest is not None, snapshots[0], snapshots[1])
