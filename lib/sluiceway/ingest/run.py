"""One ingest, end to end: scan -> read -> validate -> write -> reconcile -> ledger.

Re-run safety: the ingest id is derived from the file's sha256; all writes happen under the
namespace's writer lease (one writer at a time); the ledger row is written `started` before
any data and `completed` last; a re-run after a crash or a failed reconciliation first
deletes that ingest id's rows. A file already `completed` is skipped.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from sluiceway import failpoints
from sluiceway.ingest import ledger
from sluiceway.ingest.landing import (
    LandingScan,
    canonical_source,
    remove_staged,
    scan_landing_file,
)
from sluiceway.ingest.read import read_landing_records
from sluiceway.ingest.reconcile import (
    Counts,
    Manifest,
    balance_problems,
    default_manifest_location,
    manifest_problems,
    read_manifest,
)
from sluiceway.ingest.validate import (
    event_time,
    flag_already_ingested,
    flag_duplicates_in_file,
    to_rejected,
    to_transactions,
    validate,
)
from sluiceway.lease import writer_lease
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings
from sluiceway.tables import (
    INGEST_LEDGER,
    REJECTED_RECORDS,
    TRANSACTIONS,
    current_snapshot_id,
    ensure_tables,
)

SKIPPED = "skipped"
LOG = get_logger("ingest")


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
        """0 for completed or skipped, 3 when reconciliation failed."""
        return 3 if self.status == ledger.FAILED else 0

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.duration_seconds if self.duration_seconds else 0.0


def ingest_id_for(sha256: str) -> str:
    """Deterministic: the same bytes always get the same ingest id, whatever the file name."""
    return f"ing_{sha256[:20]}"


def ingest_file(
    spark: SparkSession,
    settings: Settings,
    source: str,
    manifest: str | None = None,
    source_version: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestResult:
    """Ingest one landing file into transactions / rejected_records / ingest_ledger.

    Whole-file problems (no or wrong header, broken gzip, a malformed manifest) raise
    LandingFileError before anything is written. The writes happen under the namespace's
    writer lease, so no other run can remove or double them.
    """
    say = progress or (lambda _message: None)
    clock = time.monotonic()
    started_at = datetime.now(UTC)
    source_file = canonical_source(source)
    scan = scan_landing_file(
        source,
        settings.parse_chunk_mb * 1024 * 1024,
        settings.staging_location(),
        settings.max_record_bytes,
        source_version,
    )
    try:
        checked_manifest = read_manifest(manifest or default_manifest_location(source))
        ingest_id = ingest_id_for(scan.sha256)
        say(
            f"scanned {source_file}: {scan.file_bytes / 1e6:.1f} MB, "
            f"{scan.physical_lines:,} lines, {len(scan.chunks)} chunks"
        )
        log_event(
            LOG,
            "landing file scanned",
            ingest_id=ingest_id,
            file_bytes=scan.file_bytes,
            lines=scan.physical_lines,
            chunks=len(scan.chunks),
        )
        with writer_lease(settings, "ingest"):
            ensure_tables(spark, settings, (TRANSACTIONS, REJECTED_RECORDS, INGEST_LEDGER))
            previous = ledger.find_entry(spark, settings, ingest_id)
            if previous is not None and previous.status == ledger.COMPLETED:
                return _already_ingested(previous, ingest_id, source_file)
            if previous is not None:
                say(f"an earlier attempt of {ingest_id} did not finish: removing its rows")
                ledger.remove_ingest_rows(spark, settings, ingest_id)
            entry = ledger.LedgerEntry(
                ingest_id=ingest_id,
                source_file=source_file,
                sha256=scan.sha256,
                status=ledger.STARTED,
                started_at=started_at,
                source_version=source_version,
                file_bytes=scan.file_bytes,
            )
            ledger.record(spark, settings, entry, is_new=previous is None)
            failpoints.reach(settings, "after_ledger_started")
            counts, snapshots = _write_records(spark, settings, scan, ingest_id, source_file, say)
            return _finish(
                spark, settings, entry, counts, snapshots, checked_manifest, clock, source_file
            )
    finally:
        if scan.staged:
            remove_staged(scan.data_path)


def _already_ingested(
    previous: ledger.LedgerEntry, ingest_id: str, source_file: str
) -> IngestResult:
    finished = previous.finished_at
    message = (
        f"already ingested as {ingest_id} from {previous.source_file}"
        + (f" at {finished:%Y-%m-%d %H:%M:%S} UTC" if finished else "")
        + "; nothing changed"
    )
    log_event(LOG, message, ingest_id=ingest_id)
    return IngestResult(
        ingest_id,
        source_file,
        SKIPPED,
        lines_read=previous.lines_read or 0,
        accepted=previous.accepted or 0,
        rejected=previous.rejected or 0,
        rejected_by_reason=dict(previous.rejected_by_reason or {}),
        accepted_amount_by_currency=dict(previous.accepted_amount_by_currency or {}),
        message=message,
    )


def _finish(
    spark: SparkSession,
    settings: Settings,
    entry: ledger.LedgerEntry,
    counts: Counts,
    snapshots: tuple[int | None, int | None],
    manifest: Manifest | None,
    clock: float,
    source_file: str,
) -> IngestResult:
    """Reconcile, and mark the ledger: `completed`, or `failed` with the ingest's rows removed.

    A failed ingest leaves no rows behind, so a corrected resend is not rejected as
    `already_ingested` and nothing half-checked reaches processing or analysts.
    """
    ingest_id = entry.ingest_id
    problems = balance_problems(counts)
    if manifest is not None:
        problems += manifest_problems(counts, manifest)
    status = ledger.FAILED if problems else ledger.COMPLETED
    if problems:
        message = "reconciliation failed: " + "; ".join(problems) + "; its rows were removed"
        ledger.remove_ingest_rows(spark, settings, ingest_id)
    else:
        message = (
            f"ingested {counts.lines_read} lines: {counts.accepted} records accepted, "
            f"{counts.rejected} rejected" + (" (manifest matched)" if manifest else "")
        )
    duration = time.monotonic() - clock
    ledger.record(
        spark,
        settings,
        dataclasses.replace(
            entry,
            status=status,
            lines_read=counts.lines_read,
            accepted=counts.accepted,
            rejected=counts.rejected,
            accepted_lines=counts.accepted_lines,
            rejected_lines=counts.rejected_lines,
            rejected_by_reason=counts.rejected_by_reason,
            accepted_amount_by_currency=counts.accepted_amount_by_currency,
            accepted_count_by_currency=counts.accepted_count_by_currency,
            message=message,
            manifest_checked=manifest is not None,
            transactions_snapshot_id=snapshots[0],
            rejected_snapshot_id=snapshots[1],
            first_event_time=counts.first_event_time,
            last_event_time=counts.last_event_time,
            finished_at=datetime.now(UTC),
            duration_seconds=duration,
        ),
    )
    failpoints.reach(settings, "after_ledger_completed")
    log_event(
        LOG,
        message,
        ingest_id=ingest_id,
        status=status,
        lines_read=counts.lines_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        rejected_by_reason=counts.rejected_by_reason,
        duration_seconds=round(duration, 2),
        lines_per_second=round(counts.lines_read / duration) if duration else None,
    )
    return IngestResult(
        ingest_id,
        source_file,
        status,
        counts.lines_read,
        counts.accepted,
        counts.rejected,
        counts.rejected_by_reason,
        counts.accepted_amount_by_currency,
        duration,
        message,
        snapshots[0],
        snapshots[1],
    )


def _write_records(
    spark: SparkSession,
    settings: Settings,
    scan: LandingScan,
    ingest_id: str,
    source_file: str,
    say: Callable[[str], None],
) -> tuple[Counts, tuple[int | None, int | None]]:
    """Validate and append; returns the counts read back from the tables and the snapshots."""
    lineage = {
        "source_file": F.lit(source_file),
        "ingest_id": F.lit(ingest_id),
        "ingested_at": F.lit(datetime.now(UTC)).cast("timestamp"),
    }
    # Persisted once: the id checks and both table writes read it again. DISK_ONLY because
    # building Spark's in-memory columnar cache of wide string rows measured 3x slower here.
    records = read_landing_records(spark, scan, settings.max_record_bytes)
    validated = validate(records).persist(StorageLevel.DISK_ONLY)
    try:
        accepted = F.size("reasons") == 0
        bounds = validated.agg(
            F.count(F.lit(1)).alias("records_read"),
            F.min(F.when(accepted, event_time())).alias("first_event"),
            F.max(F.when(accepted, event_time())).alias("last_event"),
        ).first()
        say(f"read and validated {bounds.records_read:,} records")
        checked = _flag_known_ids(
            spark, settings, flag_duplicates_in_file(validated), bounds, ingest_id
        )
        to_transactions(checked, lineage).writeTo(settings.table(TRANSACTIONS)).append()
        transactions_snapshot = current_snapshot_id(spark, settings, TRANSACTIONS)
        failpoints.reach(settings, "after_transactions_commit")
        say("appended accepted records to transactions")
        to_rejected(checked, lineage).writeTo(settings.table(REJECTED_RECORDS)).append()
        rejected_snapshot = current_snapshot_id(spark, settings, REJECTED_RECORDS)
        failpoints.reach(settings, "after_rejected_commit")
        say("appended rejected records to rejected_records")
    finally:
        validated.unpersist()
    counts = read_back_counts(spark, settings, ingest_id, scan.physical_lines, bounds.records_read)
    return counts, (transactions_snapshot, rejected_snapshot)


def _flag_known_ids(
    spark: SparkSession, settings: Settings, validated: DataFrame, bounds: Row, ingest_id: str
) -> DataFrame:
    """Reject ids already in `transactions` from completed ingests near this file's events.

    Only completed ingests count: a failed or unfinished one must not make a corrected resend
    look like a duplicate. The table is read at its snapshot from before this ingest writes:
    the result is evaluated once per output table and must never see this ingest's own rows.
    """
    snapshot = current_snapshot_id(spark, settings, TRANSACTIONS)
    if bounds.first_event is None or snapshot is None:
        return validated
    window = timedelta(days=settings.duplicate_lookback_days)
    completed = (
        spark.table(settings.table(INGEST_LEDGER))
        .where(F.col("status") == ledger.COMPLETED)
        .select("ingest_id")
    )
    existing = (
        spark.read.option("snapshot-id", snapshot)
        .table(settings.table(TRANSACTIONS))
        .where(F.col("ingest_id") != ingest_id)
        .where(F.col("event_time") >= F.lit(bounds.first_event - window))
        .where(F.col("event_time") <= F.lit(bounds.last_event + window))
        .join(F.broadcast(completed), "ingest_id", "left_semi")
        .select("transaction_id")
    )
    return flag_already_ingested(validated, existing)


def read_back_counts(
    spark: SparkSession, settings: Settings, ingest_id: str, lines_read: int, records_read: int
) -> Counts:
    """Figures of an ingest as they are in the tables, not as the job believes it wrote them."""
    where = F.col("ingest_id") == ingest_id
    lines_covered = F.sum(F.col("last_line_number") - F.col("line_number") + 1)
    by_currency = (
        spark.table(settings.table(TRANSACTIONS))
        .where(where)
        .groupBy("currency")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("amount").alias("total"),
            lines_covered.alias("lines"),
            F.min("event_time").alias("first_event"),
            F.max("event_time").alias("last_event"),
        )
        .collect()
    )
    rejected = (
        spark.table(settings.table(REJECTED_RECORDS))
        .where(where)
        .agg(F.count(F.lit(1)).alias("n"), lines_covered.alias("lines"))
        .first()
    )
    by_reason = (
        spark.table(settings.table(REJECTED_RECORDS))
        .where(where)
        .select(F.explode("reasons").alias("reason"))
        .groupBy("reason")
        .count()
        .collect()
    )
    return Counts(
        lines_read=lines_read,
        accepted=sum(row.n for row in by_currency),
        rejected=rejected.n,
        records_read=records_read,
        accepted_lines=sum(row.lines for row in by_currency),
        rejected_lines=rejected.lines or 0,
        rejected_by_reason={row.reason: row["count"] for row in by_reason},
        accepted_amount_by_currency={row.currency: row.total for row in by_currency},
        accepted_count_by_currency={row.currency: row.n for row in by_currency},
        first_event_time=min((row.first_event for row in by_currency), default=None),
        last_event_time=max((row.last_event for row in by_currency), default=None),
    )
