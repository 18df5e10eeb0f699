"""A stream's micro-batches through `stream.batch.ingest_batch`, on real Spark and Iceberg, read
back with DuckDB: the generator's hostile records as Kafka values give the file's reason
counts, every (partition, offset) lands in exactly one row, a replay publishes nothing, a
re-sent record is `already_ingested`, a replay with other bytes stops. (The Kafka source
itself is tested against a real broker in tests/integration/test_stream_kafka.py.)
"""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.generate import generate_records
from sluiceway.ingest import ledger
from sluiceway.statuses import COMPLETED, SKIPPED
from sluiceway.stream.batch import KafkaBatch, ReplayMismatchError, ingest_batch
from sluiceway.stream.offsets import OffsetRanges

pytestmark = pytest.mark.integration

TOPIC = "partner-transactions"
GOOD = (
    b"TXS00000001,DE89000000037000001445,M0000001,10.25,EUR,2026-11-25T10:00:00Z,settled,"
    b"card_present,5912,DE,Grocery store"
)
# Values a producer gets wrong, each with the one reason the contract gives it.
ODD_VALUES: dict[bytes | None, str | None] = {
    b"\xef\xbb\xbf" + GOOD.replace(b"TXS00000001", b"TXS00000002"): None,  # a BOM: accepted
    GOOD.replace(b"TXS00000001", b"TXS00000003") + b"\r\n": None,  # one line end: accepted
    None: c.WRONG_FIELD_COUNT,  # a tombstone reads as an empty line
    b"": c.WRONG_FIELD_COUNT,
    GOOD.replace(b"TXS00000001", b"TXS00000004")
    + b"\n"
    + GOOD.replace(b"TXS00000001", b"TXS00000005"): c.WRONG_FIELD_COUNT,  # two lines, one value
    b'{"transaction_id": "TXS00000006", "amount": "1.00"}': c.BAD_QUOTING,  # JSON: CSV only
    GOOD.replace(b"Grocery store", b"Caf\xe9"): c.INVALID_ENCODING,
    GOOD.replace(b"Grocery store", b'"open'): c.UNTERMINATED_QUOTE,
}


def kafka_table(values: list[bytes | None], partitions: int, first_offset: int = 0) -> pa.Table:
    """Values spread over partitions round-robin, offsets counting up per partition."""
    partition = [index % partitions for index in range(len(values))]
    offset = [first_offset + index // partitions for index in range(len(values))]
    return pa.table(
        {
            "partition": pa.array(partition, pa.int32()),
            "offset": pa.array(offset, pa.int64()),
            "value": pa.array(values, pa.binary()),
        }
    )


def test_micro_batches_give_the_files_reasons_and_each_offset_once(
    spark, isolated_settings, duckdb_query
):
    settings = isolated_settings
    values, manifest = generate_records(2_000, seed=11, defect_rate=0.05)
    odd = list(ODD_VALUES)
    table = kafka_table([*values, *odd], partitions=3)
    batch = KafkaBatch.of(TOPIC, table)

    result = ingest_batch(spark, settings, batch)

    expected = Counter(manifest.rejected_by_reason)
    expected.update(reason for reason in ODD_VALUES.values() if reason)
    assert result.status == COMPLETED, result.message
    assert result.lines_read == len(values) + len(odd)
    assert result.rejected_by_reason == dict(expected)
    assert result.accepted == manifest.accepted + 2
    rows = duckdb_query(
        settings,
        "SELECT source_file, line_number FROM transactions UNION ALL "
        "SELECT source_file, line_number FROM rejected_records",
    )
    assert len(rows) == len(set(rows)) == len(values) + len(odd)
    assert {source for source, _ in rows} == {f"kafka://{TOPIC}/{p}" for p in range(3)}
    entry = ledger.find_entry(spark, settings, batch.ranges.ingest_id())
    assert entry is not None and entry.status == COMPLETED
    assert OffsetRanges.from_json(TOPIC, entry.source_version or "{}") == batch.ranges
    assert entry.source_file == f"kafka://{TOPIC}"

    replay = ingest_batch(spark, settings, KafkaBatch.of(TOPIC, table))
    assert replay.status == SKIPPED
    assert duckdb_query(settings, "SELECT count(*) FROM transactions")[0][0] == result.accepted

    # The producer re-sends the first 50 values: new offsets, the same transaction ids.
    resent = KafkaBatch.of(TOPIC, kafka_table(values[:50], partitions=3, first_offset=10_000))
    again = ingest_batch(spark, settings, resent)
    assert again.status == COMPLETED
    assert again.accepted == 0
    assert again.rejected_by_reason.get(c.ALREADY_INGESTED, 0) >= 45
    assert duckdb_query(settings, "SELECT count(*) FROM transactions")[0][0] == result.accepted
    ids = duckdb_query(
        settings, "SELECT count(*), count(DISTINCT transaction_id) FROM transactions"
    )[0]
    assert ids[0] == ids[1]


def test_a_replay_with_other_bytes_stops_and_writes_nothing(spark, isolated_settings):
    settings = isolated_settings
    first = kafka_table([GOOD], partitions=1)
    ingest_batch(spark, settings, KafkaBatch.of(TOPIC, first))
    other = kafka_table([GOOD.replace(b"10.25", b"99.99")], partitions=1)
    with pytest.raises(ReplayMismatchError, match="topic deleted and created again"):
        ingest_batch(spark, settings, KafkaBatch.of(TOPIC, other))


def test_a_zombie_batch_is_fenced_and_the_batch_that_took_over_stays_once(
    spark, isolated_settings, duckdb_query, tmp_path
):
    """A stream paused past its lease (its lease file gone, as an expired DynamoDB lease
    looks) while a replay of the same batch completes: the zombie's publish is refused."""
    import dataclasses
    import threading

    from sluiceway.lease import LeaseLostError, lease_file

    settings = isolated_settings
    values, _ = generate_records(300, seed=13, first_id=700_000)
    table = kafka_table(values, partitions=2)
    marker = tmp_path / "paused"
    paused = dataclasses.replace(settings, failpoint=f"pause@after_staged@{marker}")
    outcome: list[BaseException | None] = []

    def zombie() -> None:
        try:
            ingest_batch(spark, paused, KafkaBatch.of(TOPIC, table))
            outcome.append(None)
        except BaseException as error:  # the assertion below says which
            outcome.append(error)

    runner = threading.Thread(target=zombie, daemon=True)
    runner.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert runner.is_alive() and time.monotonic() < deadline, outcome
        time.sleep(0.05)
    lease_file(settings).unlink()

    replay = ingest_batch(spark, settings, KafkaBatch.of(TOPIC, table))
    marker.unlink()
    runner.join(120)

    assert replay.status == COMPLETED
    assert len(outcome) == 1 and isinstance(outcome[0], LeaseLostError), outcome
    rows = duckdb_query(
        settings, "SELECT count(*), count(DISTINCT transaction_id) FROM transactions"
    )
    assert rows == [(300, 300)]
    statuses = duckdb_query(settings, "SELECT status FROM ingest_ledger")
    assert statuses == [(COMPLETED,)]


def test_a_batch_overlapping_an_ingested_one_is_refused_and_writes_nothing(
    spark, isolated_settings, duckdb_query
):
    """A second stream of the topic (another checkpoint) reads offsets 5-14 after the first
    ingested 0-9: offsets 5-9 must not land twice."""
    from sluiceway.stream.batch import OverlappingBatchError

    settings = isolated_settings
    values, _ = generate_records(15, seed=14, first_id=800_000)
    first = kafka_table(values[:10], partitions=1)
    ingest_batch(spark, settings, KafkaBatch.of(TOPIC, first))
    second = kafka_table(values[5:], partitions=1, first_offset=5)
    with pytest.raises(OverlappingBatchError, match="offsets 0:5-9"):
        ingest_batch(spark, settings, KafkaBatch.of(TOPIC, second))
    rows = duckdb_query(
        settings,
        "SELECT count(*) FROM (SELECT source_file, line_number FROM transactions "
        "UNION ALL SELECT source_file, line_number FROM rejected_records)",
    )
    assert rows == [(10,)]
    assert duckdb_query(settings, "SELECT count(*) FROM ingest_ledger") == [(1,)]
