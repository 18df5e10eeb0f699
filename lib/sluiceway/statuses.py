"""The status of an ingest: written by the ingest, read by processing, orchestration and SQL.

Why here and not in the ingest package: processing selects `completed` ingests, the
orchestration's metrics and the CLI sort results by status, and the analyst SQL filters on
it; they all need the word without importing the ingest.
"""

from __future__ import annotations

# `ingest_ledger.status`: a row is `started` before any data is written, `publishing` once the
# audit passed and the staged snapshots are decided (the ingest's commit point: a crash after
# it is rolled forward by the next writer), and `completed` (or `failed`, when reconciliation
# found a difference, nothing published; or `refused`, when the file broke its feed's file
# policy, nothing published: lib/sluiceway/ingest/file_policy.py) last. Only `completed`
# ingests are processed, reported and counted by the duplicate check.
STARTED = "started"
PUBLISHING = "publishing"
COMPLETED = "completed"
FAILED = "failed"
REFUSED = "refused"
# An ingest result, never a ledger row: the file was already completed, nothing was written.
SKIPPED = "skipped"
