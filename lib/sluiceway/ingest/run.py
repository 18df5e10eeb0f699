"""One ingest, end to end, as its sequence of steps: read the landing file (`landing`: its
sha256 and header; the chunk plan goes on in a thread while the next steps run); under the
writer lease, finish any interrupted publication (`recover`) and write the ledger row
`started`; write and stage the chunks' files (`stage`); audit (`audit`); the ledger row
`publishing` (the commit point), then publish (`publish`) and `completed`; or, when the
audit failed, discard the files and `failed`; or, when the file broke its feed's file policy
(`file_policy`: too many lines rejected, or a fail_file reason), discard them and `refused`.

Re-run safety: the ingest id is derived from the file's sha256; all writes happen under the
namespace's writer lease and every commit is fenced (`sluiceway.commits`); nothing reaches
`main` before the ledger says `publishing`, and a `publishing` ingest is finished by the
next writer, so a re-run after a crash starts again from nothing or finds the file
`completed`. A file already `completed` is skipped; a `failed` or `refused` one is ingested
again and judged again (by the policy the re-run is given: `--max-rejected-share`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pyspark.sql import SparkSession

from sluiceway import failpoints
from sluiceway.commits import TableCommits
from sluiceway.errors import ExitCode
from sluiceway.ingest import ledger
from sluiceway.ingest.audit import AuditOutcome, audit
from sluiceway.ingest.file_policy import FilePolicy, feed_policy
from sluiceway.ingest.landing import LandingScanner
from sluiceway.ingest.publish import publish
from sluiceway.ingest.reconcile import read_manifest
from sluiceway.ingest.recover import ledger_entry_after_recovery
from sluiceway.ingest.source import resolve_version
from sluiceway.ingest.stage import StagedIngest, delete_files, write_and_stage
from sluiceway.ingest.warm_up import workers_warming
from sluiceway.job_runs import INGEST_STEP, JobRun, record_job_run, spark_workers
from sluiceway.lease import writer_lease
from sluiceway.locations import canonical_source, manifest_location
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED, FAILED, PUBLISHING, REFUSED, SKIPPED, STARTED
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

LOGGER = get_logger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did, for the CLI summary, the job's exit code and the next step."""

    ingest_id: str
    source_file: str
    status: str
    lines_read: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_amount_by_currency: dict[str, Decimal] = field(default_factory=dict)
    duration_seconds: float = 0.0
    message: str = ""
    transactions_snapshot_id: int | None = None
    rejected_snapshot_id: int | None = None

    @property
    def exit_code(self) -> int:
        """0 for completed or skipped, 3 when reconciliation failed, 2 when the file was
        refused (a data error: the state machine fails at once, no fallback)."""
        if self.status == FAILED:
            return ExitCode.RECONCILIATION_FAILED
        return ExitCode.BAD_INPUT if self.status == REFUSED else ExitCode.OK

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.duration_seconds if self.duration_seconds else 0.0


def ingest_id_for(sha256: str) -> str:
    """Deterministic: the same bytes always get the same ingest id, whatever the file name."""
    return f"ing_{sha256[:20]}"


def open_landing(
    settings: Settings, source: str, source_version: str | None = None
) -> LandingScanner:
    """Start the landing file's scan: its threads hash the file, match its header and plan
    its chunks while the caller goes on (starting Spark takes as long as hashing 1 GB).

    The identity (sha256 of the whole file, header, gzip) comes first and is all the lease and
    the ledger need; chunks are handed to the tasks as they are planned
    (`stage.write_and_stage`). Without a version from the event, the current one is pinned:
    driver and executors then read the same bytes even if the object is overwritten mid-run,
    and the ledger says which.
    """
    return LandingScanner(
        source,
        settings.parse_chunk_mb * 1024 * 1024,
        settings.staging_location(),
        settings.max_record_bytes,
        source_version or resolve_version(source),
        *settings.header_reading(),
        settings.feed_contract().columns,
    )


def ingest_file(
    spark: SparkSession,
    settings: Settings,
    source: str,
    manifest: str | None = None,
    source_version: str | None = None,
    progress: Callable[[str], None] | None = None,
    policy: FilePolicy | None = None,
    scanner: LandingScanner | None = None,
) -> IngestResult:
    """Ingest one landing file into transactions / rejected_records / ingest_ledger.

    Whole-file problems (no or wrong header, broken gzip, a malformed manifest) raise
    LandingFileError before anything is written; a file that breaks `policy` (judged on the
    staged figures) is `refused`, publishing nothing. The writes happen under the
    namespace's writer lease, so no other run can remove or double them. `scanner`: the
    file's scan, if the caller started it (`open_landing`); this ingest closes it.
    """
    say = progress or (lambda _message: None)
    source_file = canonical_source(source)
    clock = time.monotonic()
    started_at = datetime.now(UTC)
    scanner = scanner or open_landing(settings, source, source_version)
    source_version = scanner.version
    try:
        with workers_warming(spark):
            identity = scanner.identity()
            checked_manifest = read_manifest(manifest or manifest_location(source))
            ingest_id = ingest_id_for(identity.sha256)
            say(
                f"read {source_file}: {identity.file_bytes / 1e6:.1f} MB in "
                f"{time.monotonic() - scanner.opened:.1f} s, sha256 {identity.sha256[:12]}"
            )
            log_event(
                LOGGER, "landing file read", ingest_id=ingest_id, file_bytes=identity.file_bytes
            )
            with writer_lease(settings, "ingest") as fence:
                commits, previous = ledger_entry_after_recovery(
                    spark, settings, fence, ingest_id, say
                )
                if previous is not None and previous.status == COMPLETED:
                    return _already_ingested(previous, ingest_id, source_file)
                if previous is not None:
                    say(
                        f"an earlier attempt of {ingest_id} ended {previous.status} and published "
                        "nothing: ingesting it again"
                    )
                entry = ledger.LedgerEntry(
                    ingest_id=ingest_id,
                    source_file=source_file,
                    sha256=identity.sha256,
                    status=STARTED,
                    started_at=started_at,
                    source_version=source_version,
                    file_bytes=identity.file_bytes,
                    rule_version=settings.feed_contract().rule_version,
                )
                ledger.record(commits, entry)
                failpoints.reach(settings, "after_ledger_started")
                staged = write_and_stage(
                    spark, settings, commits, scanner, ingest_id, source_file, say
                )
                failpoints.reach(settings, "after_staged")
                judged_by = policy or feed_policy(settings.feed_contract())
                audited = audit(staged, checked_manifest, judged_by, source_file)
                result = publish_or_discard(commits, entry, staged, audited, clock, say)
                record_job_run(
                    commits,
                    JobRun(
                        INGEST_STEP, (ingest_id,), settings.profile, spark_workers(spark),
                        result.lines_read, started_at,
                        started_at + timedelta(seconds=result.duration_seconds),
                        result.duration_seconds,
                    ),
                )  # fmt: skip
                return result
    finally:
        scanner.close()  # stops the planner if the ingest ended early; removes a staged copy


def _already_ingested(
    previous: ledger.LedgerEntry, ingest_id: str, source_file: str
) -> IngestResult:
    finished = previous.finished_at
    message = (
        f"already ingested as {ingest_id} from {previous.source_file}"
        + (f" at {finished:%Y-%m-%d %H:%M:%S} UTC" if finished else "")
        + "; nothing changed"
    )
    log_event(LOGGER, message, ingest_id=ingest_id)
    return skipped_result(previous, source_file, message)


def skipped_result(previous: ledger.LedgerEntry, source_file: str, message: str) -> IngestResult:
    """The result of a run that found its ingest completed: the ledger's figures, skipped."""
    return IngestResult(
        previous.ingest_id,
        source_file,
        SKIPPED,
        lines_read=previous.lines_read or 0,
        accepted=previous.accepted or 0,
        rejected=previous.rejected or 0,
        rejected_by_reason=dict(previous.rejected_by_reason or {}),
        accepted_amount_by_currency=dict(previous.accepted_amount_by_currency or {}),
        message=message,
    )


def publish_or_discard(
    commits: TableCommits,
    entry: ledger.LedgerEntry,
    staged: StagedIngest,
    audited: AuditOutcome,
    clock: float,
    say: Callable[[str], None],
) -> IngestResult:
    """Audited: ledger `publishing` (the commit point), publish, `completed`. Failed or
    refused: the files deleted and the ledger `failed` or `refused`. Logged either way."""
    settings = commits.settings
    ingest_id = entry.ingest_id
    counts = staged.counts
    decided = dataclasses.replace(
        entry,
        status=PUBLISHING,
        lines_read=counts.lines_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        accepted_lines=counts.accepted_lines,
        rejected_lines=counts.rejected_lines,
        rejected_by_reason=counts.rejected_by_reason,
        accepted_amount_by_currency=counts.accepted_amount_by_currency,
        accepted_count_by_currency=counts.accepted_count_by_currency,
        message=audited.message,
        manifest_checked=audited.manifest_checked,
        transactions_snapshot_id=staged.transactions_snapshot,
        rejected_snapshot_id=staged.rejected_snapshot,
        first_event_time=counts.first_event_time,
        last_event_time=counts.last_event_time,
    )
    if audited.status != COMPLETED:
        delete_files(staged.files)
        decided = dataclasses.replace(
            decided, transactions_snapshot_id=None, rejected_snapshot_id=None
        )
    else:
        ledger.record(commits, decided)
        failpoints.reach(settings, "after_ledger_publishing")
        snapshots = {
            TRANSACTIONS: staged.transactions_snapshot,
            REJECTED_RECORDS: staged.rejected_snapshot,
        }
        publish(commits, ingest_id, snapshots)
        say("audited and published to transactions and rejected_records")
    duration = time.monotonic() - clock
    ledger.record(
        commits,
        dataclasses.replace(
            decided,
            status=audited.status,
            finished_at=datetime.now(UTC),
            duration_seconds=duration,
        ),
    )
    failpoints.reach(settings, "after_ledger_completed")
    log_event(
        LOGGER,
        audited.message,
        ingest_id=ingest_id,
        status=audited.status,
        lines_read=counts.lines_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        rejected_by_reason=counts.rejected_by_reason,
        duration_seconds=round(duration, 2),
        lines_per_second=round(counts.lines_read / duration) if duration else None,
    )
    return IngestResult(
        ingest_id,
        entry.source_file,
        audited.status,
        counts.lines_read,
        counts.accepted,
        counts.rejected,
        counts.rejected_by_reason,
        counts.accepted_amount_by_currency,
        duration,
        audited.message,
        decided.transactions_snapshot_id,
        decided.rejected_snapshot_id,
    )
