"""`sluiceway stream`: a Kafka topic -> the ingest's tables, micro-batch by micro-batch, with
each batch's accepted records processed right after it is published.

Spark Structured Streaming reads the topic (Spark's Kafka connector) and hands each
micro-batch to `batch.ingest_batch` through `foreachBatch`; the checkpoint (under the
warehouse unless given) keeps the offsets. A batch is published exactly once whatever
happens to the process: its ingest id comes from its offset ranges, so Spark's replay of an
uncommitted batch finds the ledger row; with no checkpoint the stream resumes after the
ledger's last decided offsets (docs/adr/0013-streaming-ingestion.md).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sluiceway.errors import ConfigurationError, ExitCode, SluicewayError
from sluiceway.logs import get_logger, log_event
from sluiceway.statuses import COMPLETED, FAILED, SKIPPED
from sluiceway.stream.batch import BATCH_COLUMNS, KafkaBatch, ingest_batch
from sluiceway.stream.offsets import (
    EARLIEST,
    LATEST,
    OffsetRanges,
    lag,
    ledger_ranges,
    resume_offsets,
    starting_offsets_json,
    stream_source,
)
from sluiceway.tables import INGEST_TABLES, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sluiceway.ingest import IngestResult
    from sluiceway.processing import ProcessOptions
    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
Progress = Callable[[str], None]
KAFKA_OPTION_PREFIX = "kafka."
LOCAL_AWS_PROFILE = "local-aws"


class BatchReconciliationError(SluicewayError):
    """A micro-batch failed its audit: nothing of it was published; the stream stops."""

    exit_code = ExitCode.RECONCILIATION_FAILED


@dataclass(frozen=True)
class StreamOptions:
    """What `sluiceway stream` and jobs/stream_transactions.py are asked to do."""

    topic: str
    bootstrap_servers: str
    checkpoint: str = ""  # default: <warehouse>/_checkpoints/<namespace>/stream/<topic>
    trigger_seconds: float = 10.0
    available_now: bool = False  # read what the topic holds now, then stop
    max_records_per_batch: int = 500_000
    starting_offsets: str = "earliest"  # only for a new stream with nothing in the ledger
    kafka_options: Mapping[str, str] = field(default_factory=dict)  # e.g. kafka.sasl.mechanism
    process: bool = True
    process_options: ProcessOptions | None = None
    lease_wait_seconds: int = 600  # how long a batch waits for a file ingest's writer lease
    # The consumer group the stream's offsets are reported under (Spark's own consumers use
    # it as their group id prefix); only a gauge for lag alarms, never where a stream resumes.
    consumer_group: str = "sluiceway-stream"


@dataclass
class StreamSummary:
    """What a stream run did, over its batches (the CLI's last line)."""

    batches: int = 0
    skipped: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    processed: int = 0
    left_pending: list[str] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0, or 5 when an endpoint outage left a batch's records pending at the end."""
        return ExitCode.ENDPOINT_UNAVAILABLE if self.left_pending else ExitCode.OK

    def describe(self) -> str:
        """The run in one line, for a person."""
        reasons = ", ".join(
            f"{reason} {count:,}" for reason, count in sorted(self.rejected_by_reason.items())
        )
        text = (
            f"stream: {self.batches} batches ({self.skipped} replayed, skipped), "
            f"{self.records:,} records: {self.accepted:,} accepted, {self.rejected:,} rejected"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.processed:,} records processed"
        )
        if self.left_pending:
            text += f"; records of {len(self.left_pending)} batches left pending (endpoint down)"
        return text

    def add(self, result: IngestResult) -> None:
        if result.status == SKIPPED:
            self.skipped += 1
            return
        self.batches += 1
        self.records += result.lines_read
        self.accepted += result.accepted
        self.rejected += result.rejected
        for reason, count in result.rejected_by_reason.items():
            self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + count


def checkpoint_location(settings: Settings, options: StreamOptions) -> str:
    """Where Spark keeps the stream's offsets: beside the tables, so S3 on AWS. The local-aws
    profile's Spark has Iceberg's S3FileIO but no Hadoop S3 file system, so its checkpoint is
    a local folder; losing it loses nothing (the stream resumes after the ledger's batches)."""
    if options.checkpoint:
        return options.checkpoint
    if settings.profile == LOCAL_AWS_PROFILE:
        root = f"{tempfile.gettempdir()}/sluiceway-checkpoints"
    else:
        root = f"{settings.warehouse.rstrip('/')}/_checkpoints"
    return f"{root}/{settings.namespace}/stream/{options.topic}"


def stream_topic(
    spark: SparkSession,
    settings: Settings,
    options: StreamOptions,
    progress: Progress | None = None,
) -> StreamSummary:
    """Run the stream until stopped (or, with `available_now`, until the topic is read)."""
    say = progress or (lambda _message: None)
    settings = dataclasses.replace(settings, lease_wait_seconds=options.lease_wait_seconds)
    ensure_tables(spark, settings, INGEST_TABLES)
    consumer = KafkaProbe(spark, options)
    checkpoint = checkpoint_location(settings, options)
    summary = StreamSummary()
    failure: list[BaseException] = []
    pending: list[str] = []
    if options.process:
        _catch_up(spark, settings, options, say, summary)

    def each_batch(frame: DataFrame, batch_id: int) -> None:
        try:
            _one_batch(spark, settings, options, consumer, frame, batch_id, summary, pending, say)
        except BaseException as error:
            failure.append(error)
            raise

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", options.bootstrap_servers)
        .option("subscribe", options.topic)
        .option("startingOffsets", _starting_offsets(spark, settings, options, consumer))
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", str(options.max_records_per_batch))
        .option("groupIdPrefix", options.consumer_group)
        .options(**dict(options.kafka_options))
        .load()
    )
    writer = (
        reader.select(*BATCH_COLUMNS)
        .writeStream.foreachBatch(each_batch)
        .option("checkpointLocation", checkpoint)
        .queryName(f"sluiceway-stream-{settings.namespace}-{options.topic}")
    )
    if options.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{options.trigger_seconds} seconds")
    say(f"streaming {options.topic} from {options.bootstrap_servers}; checkpoint {checkpoint}")
    query = writer.start()
    try:
        query.awaitTermination()
    except Exception:
        if failure and isinstance(failure[0], SluicewayError):
            raise failure[0] from None
        if not (failure and stopped_mid_batch(failure[0])):
            raise
        # `stop()` interrupts the batch in flight. Nothing of it is lost: published, it is
        # skipped when replayed; staged, the next writer finishes it (as after a kill).
        log_event(LOGGER, "stream stopped during a batch; it is replayed when the stream "
                  "starts again", cause=_first_line(failure[0]))  # fmt: skip
    finally:
        if query.isActive:
            query.stop()
    if pending:
        summary.left_pending = list(pending)
    return summary


def _lag_if_known(consumer: KafkaProbe, ranges: OffsetRanges, batch_id: int) -> int | None:
    """The records behind this batch, or None when the broker cannot say now. A gauge only:
    the batch is published already, so a broker restart or the stream's stop interrupting the
    call must not fail it."""
    try:
        return lag(consumer.end_offsets(), ranges)
    except Exception as error:  # py4j's error of the Kafka client, whatever its cause
        log_event(LOGGER, "stream lag unknown", batch_id=batch_id, cause=_first_line(error))
        return None


def _report_offsets(consumer: KafkaProbe, ranges: OffsetRanges, batch_id: int) -> None:
    """The batch's end offsets under the consumer group, for lag alarms; best effort, as the
    ledger, not the group, is where a stream resumes."""
    try:
        consumer.commit(ranges)
    except Exception as error:  # py4j's error of the Kafka client, whatever its cause
        log_event(LOGGER, "stream offsets not reported", batch_id=batch_id,
                  cause=_first_line(error))  # fmt: skip


# What a blocking JVM call of a batch raises when `StreamingQuery.stop()` interrupts its thread.
INTERRUPTIONS = (
    "java.lang.InterruptedException",
    "org.apache.kafka.common.errors.InterruptException",
    "java.nio.channels.ClosedByInterruptException",
)


def stopped_mid_batch(error: BaseException) -> bool:
    """Whether a batch failed only because the stream was being stopped."""
    return any(name in str(error) for name in INTERRUPTIONS)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _one_batch(
    spark: SparkSession,
    settings: Settings,
    options: StreamOptions,
    consumer: KafkaProbe,
    frame: DataFrame,
    batch_id: int,
    summary: StreamSummary,
    pending: list[str],
    say: Progress,
) -> None:
    """Ingest one micro-batch, log it, and process its records (and any left pending)."""
    clock = time.monotonic()
    collected = frame._collect_as_arrow()
    if not collected:  # an empty topic still makes a first, empty batch
        return
    records = pa.Table.from_batches(collected)
    if not records.num_rows:
        return
    batch = KafkaBatch.of(options.topic, records)
    result = ingest_batch(spark, settings, batch, say)
    summary.add(result)
    if result.status == FAILED:
        # Nothing of the batch was published and Spark will not commit it: the restarted
        # stream replays it; an operator must look first (as for a file, exit 3).
        raise BatchReconciliationError(result.message)
    ranges = batch.ranges
    ingested = time.monotonic() - clock
    behind = _lag_if_known(consumer, ranges, batch_id)
    if result.status == COMPLETED:
        _report_offsets(consumer, ranges, batch_id)
    log_event(
        LOGGER,
        "stream batch",
        batch_id=batch_id,
        ingest_id=result.ingest_id,
        status=result.status,
        offsets=json.loads(ranges.to_json()),
        records=result.lines_read,
        accepted=result.accepted,
        rejected=result.rejected,
        rejected_by_reason=result.rejected_by_reason,
        seconds=round(ingested, 3),
        lag=behind,
    )
    say(
        f"batch {batch_id} [{ranges.describe()}]: {result.status}, {result.lines_read:,} records "
        f"({result.accepted:,} accepted, {result.rejected:,} rejected) in {ingested:.1f} s; "
        + (f"lag {behind:,}" if behind is not None else "lag unknown")
    )
    _publish_batch_metrics(settings, result, ingested, behind)
    if options.process and result.status in (COMPLETED, SKIPPED):
        if result.accepted:
            pending.append(result.ingest_id)
        _process_pending(spark, settings, options, pending, summary, say)


def _process_pending(
    spark: SparkSession,
    settings: Settings,
    options: StreamOptions,
    pending: list[str],
    summary: StreamSummary,
    say: Progress,
) -> None:
    """Process every batch whose records are not all decided; an outage leaves them for the
    next batch (they stay pending, nothing is dead-lettered for it)."""
    from sluiceway.processing import RecordsLeftPending, process_records

    for ingest_id in list(pending):
        try:
            processed = process_records(spark, settings, options.process_options, ingest_id)
        except RecordsLeftPending as error:
            say(f"processing of {ingest_id} left records pending; retried after the next batch")
            log_event(LOGGER, "stream processing left records pending", ingest_id=ingest_id)
            summary.processed += error.result.metrics.records
            return
        summary.processed += processed.metrics.records
        pending.remove(ingest_id)


def _catch_up(
    spark: SparkSession,
    settings: Settings,
    options: StreamOptions,
    say: Progress,
    summary: StreamSummary,
) -> None:
    """Process what earlier runs of this stream published but did not process (a crash
    between a batch's publish and its processing): every pending record of the topic."""
    from sluiceway.processing import RecordsLeftPending, process_records

    if not ledger_ranges(spark, settings, options.topic):
        return
    say(f"processing what earlier runs of {options.topic} left pending")
    try:
        result = process_records(
            spark, settings, options.process_options, source=stream_source(options.topic)
        )
    except RecordsLeftPending as error:
        say(str(error))
        return
    summary.processed += result.metrics.records


def _starting_offsets(
    spark: SparkSession, settings: Settings, options: StreamOptions, consumer: KafkaProbe
) -> str:
    """Spark's `startingOffsets`, which it reads only for a new checkpoint: after the ledger's
    decided batches when there are any (a lost checkpoint neither re-reads nor skips a
    record), else the option's (`earliest` or `latest`)."""
    decided = ledger_ranges(spark, settings, options.topic)
    if not decided:
        return options.starting_offsets
    default = EARLIEST if options.starting_offsets == "earliest" else LATEST
    return starting_offsets_json(
        options.topic, resume_offsets(decided, consumer.partitions(), default)
    )


def _publish_batch_metrics(
    settings: Settings, result: IngestResult, seconds: float, behind: int | None
) -> None:
    """The batch jobs' metrics (reject ratio, reconciliation) and the stream's own, on AWS."""
    from sluiceway.orchestration.metrics import (
        publish_ingest_metrics,
        publish_safely,
        publish_stream_metrics,
    )

    publish_safely(settings, lambda client: publish_ingest_metrics(client, settings, result))
    publish_safely(
        settings, lambda client: publish_stream_metrics(client, settings, seconds, behind)
    )


class KafkaProbe:
    """The topic's partitions and end offsets, through the Kafka client Spark's connector
    brings (so the same options, IAM auth included, apply); no Python Kafka client needed."""

    def __init__(self, spark: SparkSession, options: StreamOptions) -> None:
        self._spark = spark
        self._options = options
        self._consumer: Any = None

    def _client(self) -> Any:
        if self._consumer is None:
            jvm = self._spark.sparkContext._jvm
            if jvm is None:
                raise ConfigurationError("no JVM behind the Spark session")
            properties = jvm.java.util.Properties()
            properties.put("bootstrap.servers", self._options.bootstrap_servers)
            deserializer = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
            properties.put("key.deserializer", deserializer)
            properties.put("value.deserializer", deserializer)
            properties.put("enable.auto.commit", "false")
            properties.put("group.id", self._options.consumer_group)
            for key, value in self._options.kafka_options.items():
                if key.startswith(KAFKA_OPTION_PREFIX):
                    properties.put(key[len(KAFKA_OPTION_PREFIX) :], value)
            self._consumer = jvm.org.apache.kafka.clients.consumer.KafkaConsumer(properties)
        return self._consumer

    def partitions(self) -> list[int]:
        infos = self._client().partitionsFor(self._options.topic)
        return sorted(int(info.partition()) for info in infos)

    def commit(self, ranges: OffsetRanges) -> None:
        """Report a published batch's end offsets under the consumer group, so the broker's
        lag metrics (MSK's MaxOffsetLag) see the stream; the ledger stays the truth."""
        jvm = self._spark.sparkContext._jvm
        assert jvm is not None
        offsets = jvm.java.util.HashMap()
        for partition, (_first, end) in ranges.ranges.items():
            offsets.put(
                jvm.org.apache.kafka.common.TopicPartition(self._options.topic, partition),
                jvm.org.apache.kafka.clients.consumer.OffsetAndMetadata(end),
            )
        self._client().commitSync(offsets)

    def end_offsets(self) -> dict[int, int]:
        jvm = self._spark.sparkContext._jvm
        assert jvm is not None
        topics = jvm.java.util.ArrayList()
        for partition in self.partitions():
            topics.add(jvm.org.apache.kafka.common.TopicPartition(self._options.topic, partition))
        ends = self._client().endOffsets(topics)
        return {int(tp.partition()): int(ends.get(tp)) for tp in ends.keySet()}


def parse_kafka_options(items: list[str] | None) -> dict[str, str]:
    """`KEY=VALUE` items (or one comma-separated string of them) -> Spark Kafka options; keys
    without the `kafka.` prefix get it (they are Kafka client settings)."""
    options: dict[str, str] = {}
    for item in items or []:
        for pair in _split_pairs(item):
            key, separator, value = pair.partition("=")
            if not separator or not key.strip():
                raise ConfigurationError(f"--kafka-option {pair!r}: expected KEY=VALUE")
            key = key.strip()
            options[key if key.startswith(KAFKA_OPTION_PREFIX) else KAFKA_OPTION_PREFIX + key] = (
                value.strip()
            )
    return options


def _split_pairs(item: str) -> list[str]:
    """Split on commas that start a new KEY=; a value may hold commas (a JAAS config)."""
    pairs: list[str] = []
    for part in item.split(","):
        if pairs and "=" not in part.split(" ", 1)[0]:
            pairs[-1] += "," + part
        else:
            pairs.append(part)
    return [pair for pair in pairs if pair.strip()]
