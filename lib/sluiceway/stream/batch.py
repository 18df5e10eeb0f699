"""One micro-batch of Kafka records -> transactions / rejected_records / ingest_ledger, once.

The same steps as a file (ingest/run.py), on the driver because a micro-batch is small:
tokenize (`records`), the contract's rules (`ingest.validate`), the duplicate rules within
the batch and against completed ingests (files and earlier batches alike), Parquet files per
partition, staged snapshots, the audit, the ledger row `publishing` (the commit point), the
publishes and `completed`, every commit fenced by the writer lease, which the stream takes
for each batch (so file ingests run between batches). A batch's ingest id comes from its
offset ranges: Spark's replay of a batch it had not committed finds the ledger row and
publishes nothing twice.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway import contract as c
from sluiceway import failpoints
from sluiceway.commits import TableCommits
from sluiceway.errors import SluicewayError
from sluiceway.iceberg_files import write_target
from sluiceway.ingest import ledger
from sluiceway.ingest.audit import AuditOutcome, audit
from sluiceway.ingest.duplicates import duplicates_in_file, readable_ids
from sluiceway.ingest.known_ids import earlier_ids
from sluiceway.ingest.reasons import accepted_mask, add_reason
from sluiceway.ingest.recover import ledger_entry_after_recovery
from sluiceway.ingest.run import IngestResult, publish_or_discard, skipped_result
from sluiceway.ingest.stage import StagedIngest, stage_written
from sluiceway.ingest.table_rows import Lineage
from sluiceway.ingest.validate import VALUE_SUFFIX, validate
from sluiceway.ingest.write import FileFigures, write_records
from sluiceway.lease import writer_lease
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED, FAILED, STARTED
from sluiceway.stream.offsets import (
    OffsetRanges,
    ledger_ranges,
    partition_source,
    stream_source,
    values_sha256,
)
from sluiceway.stream.records import tokenize_values
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.feeds import Feed

# (partition, offset) packed into one int64: Kafka offsets stay far below 2**47.
OFFSET_BITS = 47
OFFSET_MASK = (1 << OFFSET_BITS) - 1
# The columns a micro-batch hands over, as Spark's Kafka source names them.
BATCH_COLUMNS = ("partition", "offset", "value")


class ReplayMismatchError(SluicewayError):
    """A replayed batch delivered other bytes than its first run: the topic was recreated."""


class OverlappingBatchError(SluicewayError):
    """Offsets of this batch were already ingested by another batch: a second stream of the
    topic (another checkpoint, or a run started beside the first) read them too."""


def _refuse_overlap(ranges: OffsetRanges, decided: list[OffsetRanges]) -> None:
    """No offset is ingested by two batches: checked under the lease, before anything is
    written, against every decided batch of the topic."""
    for other in decided:
        for partition, (first, end) in ranges.ranges.items():
            other_first, other_end = other.ranges.get(partition, (0, 0))
            if first < other_end and other_first < end:
                raise OverlappingBatchError(
                    f"offsets {partition}:{max(first, other_first)}-{min(end, other_end) - 1} of "
                    f"{stream_source(ranges.topic)} were already ingested by batch "
                    f"{other.ingest_id()} ({other.describe()}): is another stream of this topic "
                    "running, or was it started with another checkpoint? Nothing was written"
                )


@dataclass(frozen=True)
class KafkaBatch:
    """The records of one micro-batch: partition, offset and value columns."""

    topic: str
    records: pa.Table

    @classmethod
    def of(cls, topic: str, records: pa.Table) -> KafkaBatch:
        """The batch in delivery order: by partition, then offset (the duplicate rule's order)."""
        records = records.select(list(BATCH_COLUMNS))
        key = _keys(records["partition"], records["offset"], ordered=False)
        if len(key) > 1 and bool(np.any(key[1:] < key[:-1])):
            records = records.take(pa.array(np.argsort(key, kind="stable")))
        return cls(topic, records)

    @property
    def ranges(self) -> OffsetRanges:
        return OffsetRanges.of(self.topic, self.records["partition"], self.records["offset"])

    def sha256(self) -> str:
        r = self.records
        return values_sha256(r["partition"], r["offset"], r["value"])


def ingest_batch(
    spark: SparkSession,
    settings: Settings,
    batch: KafkaBatch,
    say: Callable[[str], None] | None = None,
) -> IngestResult:
    """Validate, write, audit and publish one micro-batch under the writer lease."""
    say = say or (lambda _message: None)
    clock = time.monotonic()
    started_at = datetime.now(UTC)
    ranges = batch.ranges
    ingest_id = ranges.ingest_id()
    sha256 = batch.sha256()
    source = stream_source(batch.topic)
    feed = settings.feed_contract()
    validated = _validated(batch, settings.max_record_bytes, feed)
    with writer_lease(settings, "stream") as fence:
        commits, previous = ledger_entry_after_recovery(spark, settings, fence, ingest_id, say)
        if previous is not None and previous.status == COMPLETED:
            return _replayed(previous, ingest_id, source, sha256)
        _refuse_overlap(ranges, ledger_ranges(spark, settings, batch.topic))
        entry = ledger.LedgerEntry(
            ingest_id=ingest_id,
            source_file=source,
            sha256=sha256,
            status=STARTED,
            started_at=started_at,
            source_version=ranges.to_json(),
            file_bytes=int(pc.sum(pc.binary_length(batch.records["value"])).as_py() or 0),
            rule_version=feed.rule_version,
        )
        ledger.record(commits, entry)
        failpoints.reach(settings, "after_ledger_started")
        checked = _with_duplicate_reasons(spark, settings, ingest_id, batch, validated)
        staged = _write_and_stage(commits, batch, checked, ingest_id)
        failpoints.reach(settings, "after_staged")
        audited = _audit(staged, batch, checked)
        return publish_or_discard(commits, entry, staged, audited, clock, say)


def _validated(batch: KafkaBatch, max_record_bytes: int, feed: Feed) -> pa.Table:
    """The feed's rules over the batch's values, numbered by offset, with a partition."""
    records = tokenize_values(batch.records["value"], max_record_bytes, feed.column_names)
    positions = records["line_number"]
    offsets = batch.records["offset"].take(positions).cast(pa.int64())
    records = records.set_column(0, records.schema.field(0), offsets).set_column(
        1, records.schema.field(1), offsets
    )
    validated = validate(records, feed)
    return validated.append_column(
        "partition", batch.records["partition"].take(positions).cast(pa.int32())
    )


def _with_duplicate_reasons(
    spark: SparkSession, settings: Settings, ingest_id: str, batch: KafkaBatch, validated: pa.Table
) -> pa.Table:
    """`duplicate_in_file` within the batch (the first delivery stays) and `already_ingested`
    against the ids of completed ingests, files and earlier batches alike."""
    id_column = settings.feed_contract().key
    readable = readable_ids(validated, id_column)
    rows = np.flatnonzero(readable)
    if not len(rows):
        return validated
    ids = validated[id_column].combine_chunks().take(pa.array(rows))
    # Delivery order: by partition, then offset (the key's order).
    delivery = _keys(validated["partition"], validated["line_number"], ordered=False)
    repeated, first = duplicates_in_file(ids, delivery[rows])
    flagged = np.zeros(validated.num_rows, dtype=bool)
    flagged[rows[repeated]] = True
    if flagged.any():
        firsts = first[repeated]
        details = [
            f"{c.DUPLICATE_IN_FILE}: {id_column} '{tid}' already delivered at "
            f"{partition_source(batch.topic, key >> OFFSET_BITS)} offset {key & OFFSET_MASK}"
            for tid, key in zip(
                ids.filter(pa.array(repeated)).to_pylist(), firsts.tolist(), strict=True
            )
        ]
        validated = add_reason(validated, pa.array(flagged), c.DUPLICATE_IN_FILE, pa.array(details))
    known = _known_ids(spark, settings, ingest_id, validated, ids)
    is_known = np.zeros(validated.num_rows, dtype=bool)
    is_known[rows] = pc.is_in(ids, value_set=known).to_numpy(zero_copy_only=False)
    if not is_known.any():
        return validated
    details_known = pc.binary_join_element_wise(
        f"{c.ALREADY_INGESTED}: {id_column} '",
        validated[id_column].combine_chunks().filter(pa.array(is_known)),
        "' is already in transactions",
        "",
    )
    return add_reason(validated, pa.array(is_known), c.ALREADY_INGESTED, details_known)


def _known_ids(
    spark: SparkSession,
    settings: Settings,
    ingest_id: str,
    validated: pa.Table,
    ids: pa.Array,
) -> pa.Array:
    """Ids of completed ingests around the batch's event times (`ingest.known_ids`)."""
    event_time = settings.feed_contract().event_time + VALUE_SUFFIX
    micros = validated.filter(accepted_mask(validated))[event_time].cast(pa.int64())
    if not len(micros):
        return pa.array([], pa.string())
    window = FileFigures(
        TRANSACTIONS,
        "",
        None,
        0,
        0,
        first_event_micros=pc.min(micros).as_py(),
        last_event_micros=pc.max(micros).as_py(),
    )
    known = earlier_ids(
        spark, settings, ingest_id, {0: [window]}, pa.table({"transaction_id": ids})
    )
    return known.combine_chunks() if isinstance(known, pa.ChunkedArray) else known


def _write_and_stage(
    commits: TableCommits, batch: KafkaBatch, validated: pa.Table, ingest_id: str
) -> StagedIngest:
    """One set of files per partition (its lineage), staged as one snapshot per table."""
    spark, settings = commits.spark, commits.settings
    targets = (
        write_target(spark, settings, TRANSACTIONS),
        write_target(spark, settings, REJECTED_RECORDS),
    )
    ingested_at = datetime.now(UTC)
    attempt = uuid.uuid4().hex[:8]
    files: list[FileFigures] = []
    partitions = validated["partition"]
    for partition in pc.unique(partitions).to_pylist():
        rows = validated.filter(pc.equal(partitions, partition))
        lineage = Lineage(
            partition_source(batch.topic, partition),
            ingest_id,
            ingested_at,
            settings.feed_contract(),
        )
        files += write_records(rows, lineage, *targets, f"{ingest_id}-p{partition}-{attempt}")
    staged = stage_written(commits, tuple(files), ingest_id, batch.records.num_rows)
    # Offsets are not lines 2..n of a file: the stream's own tiling check is in `_audit`.
    return dataclasses.replace(staged, counts=dataclasses.replace(staged.counts, line_runs=None))


def _audit(staged: StagedIngest, batch: KafkaBatch, validated: pa.Table) -> AuditOutcome:
    """The file audit, plus: every (partition, offset) delivered is in exactly one record.

    No file policy: a refused batch would be replayed forever, so a stream refuses no batch
    for its rejects (docs/adr/0013-streaming-ingestion.md)."""
    outcome = audit(staged, None)
    delivered = _keys(batch.records["partition"], batch.records["offset"])
    recorded = _keys(validated["partition"], validated["line_number"])
    if np.array_equal(delivered, recorded):
        return outcome
    missing = np.setdiff1d(delivered, recorded).size
    problem = (
        f"{missing} delivered records have no row and {len(recorded) - len(delivered) + missing} "
        "rows are extra"
    )
    if outcome.status == FAILED:
        return dataclasses.replace(outcome, message=f"{outcome.message}; {problem}")
    return AuditOutcome(
        FAILED, f"reconciliation failed: {problem}; nothing was published", outcome.manifest_checked
    )


def _keys(
    partitions: pa.Array | pa.ChunkedArray,
    offsets: pa.Array | pa.ChunkedArray,
    ordered: bool = True,
) -> NDArray[np.int64]:
    """(partition, offset) as one int64 key (offsets stay below 2**47), sorted unless
    `ordered` is False."""
    p = np.asarray(partitions.to_numpy(), dtype=np.int64)
    o = np.asarray(offsets.to_numpy(), dtype=np.int64)
    key = (p << OFFSET_BITS) | o
    return np.sort(key) if ordered else key


def _replayed(
    previous: ledger.LedgerEntry, ingest_id: str, source: str, sha256: str
) -> IngestResult:
    """A batch Spark replays after a crash: already published, so nothing to do."""
    if previous.sha256 != sha256:
        raise ReplayMismatchError(
            f"batch {ingest_id} ({previous.source_version}) of {source} was ingested with "
            f"other bytes (sha256 {previous.sha256[:12]}, now {sha256[:12]}): was the topic "
            "deleted and created again? Nothing was written; the ledger's offsets of this "
            "topic belong to its earlier life: publish to a topic of a new name"
        )
    return skipped_result(
        previous, source, f"batch {ingest_id} was already published; nothing changed"
    )
