"""The status of an ingest: written by the ingest, read by processing, orchestration and SQL.

Why here and not in the ingest package: processing selects `completed` ingests, the
orchestration's metrics and the CLI sort results by status, and the analyst SQL filters on
it; they all need the word without importing the ingest.
"""

from __future__ import annotations

# `ingest_ledger.status`: a row is `started` before any data is written and `completed` (or
# `failed`, when reconciliation found a difference) last. Only `completed` ingests are
# published, processed and reported.
STARTED = "started"
COMPLETED = "completed"
FAILED = "failed"
# An ingest result, never a ledger row: the file was already completed, nothing was written.
SKIPPED = "skipped"
