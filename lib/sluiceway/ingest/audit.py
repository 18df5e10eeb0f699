"""The audit of a staged ingest: write-audit-publish's middle step
(docs/adr/0007-write-audit-publish.md).

A failed audit is never published (its staged snapshots stay off `main` and its files are
deleted), so a corrected resend is not rejected as `already_ingested` and nothing
half-checked reaches processing or analysts. Publishing is the run's next step, after the
ledger recorded the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluiceway.ingest.reconcile import Manifest, balance_problems, manifest_problems
from sluiceway.ingest.stage import StagedIngest
from sluiceway.statuses import COMPLETED, FAILED


@dataclass(frozen=True)
class AuditOutcome:
    """`completed` (to publish) or `failed` (to discard), and the ledger message."""

    status: str
    message: str
    manifest_checked: bool


def audit(staged: StagedIngest, manifest: Manifest | None) -> AuditOutcome:
    """Compare the staged figures with each other (and with the manifest's)."""
    counts = staged.counts
    problems = balance_problems(counts)
    if manifest is not None:
        problems += manifest_problems(counts, manifest)
    if problems:
        message = "reconciliation failed: " + "; ".join(problems) + "; nothing was published"
        return AuditOutcome(FAILED, message, manifest is not None)
    message = (
        f"ingested {counts.lines_read} lines: {counts.accepted} records accepted, "
        f"{counts.rejected} rejected" + (" (manifest matched)" if manifest else "")
    )
    return AuditOutcome(COMPLETED, message, manifest is not None)
