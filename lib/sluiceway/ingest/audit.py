"""The audit of a staged ingest: write-audit-publish's middle step
(docs/adr/0007-write-audit-publish.md).

A failed audit is never published (its staged snapshots stay off `main` and its files are
deleted), so a corrected resend is not rejected as `already_ingested` and nothing
half-checked reaches processing or analysts. Publishing is the run's next step, after the
ledger recorded the decision. The audit first reconciles (`failed` when the figures differ),
then judges the file as a whole against its feed's file policy (`refused`:
`ingest/file_policy.py`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from sluiceway.ingest.file_policy import FilePolicy, judge_file
from sluiceway.ingest.reconcile import Counts, Manifest, balance_problems, manifest_problems
from sluiceway.ingest.rejected_lines import first_lines_by_reason
from sluiceway.ingest.stage import StagedIngest
from sluiceway.ingest.write import FileFigures
from sluiceway.locations import resolve
from sluiceway.statuses import COMPLETED, FAILED, REFUSED
from sluiceway.tables import REJECTED_RECORDS


@dataclass(frozen=True)
class AuditOutcome:
    """`completed` (to publish), `failed` or `refused` (to discard), and the ledger message."""

    status: str
    message: str
    manifest_checked: bool


def audit(
    staged: StagedIngest,
    manifest: Manifest | None,
    policy: FilePolicy | None = None,
    source_file: str = "",
) -> AuditOutcome:
    """Compare the staged figures with each other (and with the manifest's), then judge the
    file by `policy` (a stream batch passes none: streams refuse no batch)."""
    counts = staged.counts
    problems = balance_problems(counts)
    if manifest is not None:
        problems += manifest_problems(counts, manifest)
    if problems:
        message = "reconciliation failed: " + "; ".join(problems) + "; nothing was published"
        return AuditOutcome(FAILED, message, manifest is not None)
    if policy is not None:
        refusal = judge_file(
            policy,
            source_file,
            counts.lines_read,
            counts.rejected_lines,
            counts.rejected_by_reason,
            lambda reasons: first_lines_by_reason(_staged_rejects(staged.files), reasons),
        )
        if refusal is not None:
            return AuditOutcome(REFUSED, refusal.message, manifest is not None)
    return AuditOutcome(
        COMPLETED, completed_message(counts, manifest is not None), manifest is not None
    )


def completed_message(counts: Counts, manifest_matched: bool) -> str:
    """The ledger's and the log's line for a completed ingest. The counts carry thousands
    separators: an 8-digit count would otherwise look like an account number to the log's
    masking (logs.mask_text) and be printed as ****0131."""
    return (
        f"ingested {counts.lines_read:,} lines: {counts.accepted:,} records accepted, "
        f"{counts.rejected:,} rejected" + (" (manifest matched)" if manifest_matched else "")
    )


def _staged_rejects(files: Collection[FileFigures]) -> Iterator[pa.Table]:
    """The line numbers and reasons of the staged rejected records, file by file (only a
    refused file's are read, before its files are deleted)."""
    for figures in files:
        if figures.table == REJECTED_RECORDS:
            filesystem, path = resolve(figures.path)
            with filesystem.open_input_file(path) as handle:
                yield pq.read_table(handle, columns=["line_number", "reasons"])
