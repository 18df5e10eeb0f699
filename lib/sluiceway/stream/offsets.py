"""A micro-batch's identity: the Kafka offset ranges it read, and where a stream resumes.

Why the offsets and not the checkpoint's batch id: Spark replays a batch it had not committed
with the same offset ranges, so an ingest id derived from topic and ranges makes the replay
find its own ledger row; and the ledger's ranges say where the stream stopped even when the
checkpoint is lost (docs/adr/0013-streaming-ingestion.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.statuses import COMPLETED, PUBLISHING
from sluiceway.tables import INGEST_LEDGER

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

SCHEME = "kafka://"
INGEST_ID_PREFIX = "str_"
# Spark's startingOffsets values for "the first offset the broker still has" and "the next".
EARLIEST = -2
LATEST = -1


def stream_source(topic: str) -> str:
    """`source_file` of a stream's ledger rows: the topic."""
    return f"{SCHEME}{topic}"


def partition_source(topic: str, partition: int) -> str:
    """`source_file` of a streamed record: its topic and partition (`line_number` = offset)."""
    return f"{SCHEME}{topic}/{partition}"


@dataclass(frozen=True)
class OffsetRanges:
    """Per partition, the first offset read and the one after the last read."""

    topic: str
    ranges: Mapping[int, tuple[int, int]]

    @classmethod
    def of(cls, topic: str, partitions: pa.Array, offsets: pa.Array) -> OffsetRanges:
        """The ranges of a batch's (partition, offset) columns."""
        table = pa.table({"partition": partitions, "offset": offsets})
        grouped = table.group_by("partition").aggregate([("offset", "min"), ("offset", "max")])
        return cls(
            topic,
            {
                int(partition): (int(first), int(last) + 1)
                for partition, first, last in zip(
                    grouped["partition"].to_pylist(),
                    grouped["offset_min"].to_pylist(),
                    grouped["offset_max"].to_pylist(),
                    strict=True,
                )
            },
        )

    def to_json(self) -> str:
        """The ranges as the ledger keeps them (`source_version`): {"partition": [from, to]}."""
        return json.dumps({str(p): list(r) for p, r in sorted(self.ranges.items())})

    @classmethod
    def from_json(cls, topic: str, text: str) -> OffsetRanges:
        return cls(topic, {int(p): (int(r[0]), int(r[1])) for p, r in json.loads(text).items()})

    def ingest_id(self) -> str:
        """Deterministic: the same topic and ranges always get the same ingest id."""
        digest = hashlib.sha256(f"{self.topic}\n{self.to_json()}".encode()).hexdigest()
        return f"{INGEST_ID_PREFIX}{digest[:20]}"

    def describe(self) -> str:
        return ", ".join(
            f"{p}:{first}-{end - 1}" for p, (first, end) in sorted(self.ranges.items())
        )


def values_sha256(partitions: pa.Array, offsets: pa.Array, values: pa.Array) -> str:
    """The hash of what a batch delivered, in (partition, offset) order: a replay of the same
    ranges must deliver the same bytes (else the topic was recreated under the stream)."""
    order = pc.sort_indices(
        pa.table({"p": partitions, "o": offsets}),
        sort_keys=[("p", "ascending"), ("o", "ascending")],
    )
    ordered = values.take(order).cast(pa.binary())
    lengths = pc.fill_null(pc.binary_length(ordered), -1)
    digest = hashlib.sha256()
    for column in (partitions.take(order).cast(pa.int64()), offsets.take(order), lengths):
        digest.update(column.to_numpy(zero_copy_only=False).astype("<i8").tobytes())
    # The values' bytes back to back: one slice of the data buffer, no copy per value.
    filled = pc.fill_null(ordered, b"")
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    _validity, offsets_buffer, data_buffer = filled.buffers()
    bounds = np.frombuffer(offsets_buffer, dtype=np.int32)[
        filled.offset : filled.offset + len(filled) + 1
    ]
    if data_buffer is not None and len(bounds) > 1:
        digest.update(memoryview(data_buffer)[int(bounds[0]) : int(bounds[-1])])
    return digest.hexdigest()


def ledger_ranges(spark: SparkSession, settings: Settings, topic: str) -> list[OffsetRanges]:
    """The ranges of the topic's batches the ledger holds as decided (completed or publishing)."""
    rows = (
        spark.table(settings.table(INGEST_LEDGER))
        .where(f"source_file = '{stream_source(topic)}'")
        .where(f"status IN ('{COMPLETED}', '{PUBLISHING}')")
        .select("source_version")
        .collect()
    )
    return [OffsetRanges.from_json(topic, row.source_version) for row in rows if row.source_version]


def resume_offsets(
    decided: list[OffsetRanges], partitions: list[int], default: int = EARLIEST
) -> dict[int, int]:
    """Where each partition resumes without a checkpoint: after the last decided offset, or
    `default` for a partition no batch has read."""
    ends: dict[int, int] = dict.fromkeys(partitions, default)
    for ranges in decided:
        for partition, (_first, end) in ranges.ranges.items():
            if partition in ends:
                ends[partition] = max(ends[partition], end)
    return ends


def starting_offsets_json(topic: str, offsets: Mapping[int, int]) -> str:
    """Spark's `startingOffsets` option for explicit offsets."""
    return json.dumps({topic: {str(p): int(o) for p, o in sorted(offsets.items())}})


def lag(end_offsets: Mapping[int, int], ranges: OffsetRanges) -> int:
    """Records the broker holds beyond this batch, over its partitions."""
    behind = [end_offsets.get(p, end) - end for p, (_first, end) in ranges.ranges.items()]
    return int(np.sum(np.maximum(behind, 0))) if behind else 0
