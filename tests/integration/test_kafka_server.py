"""The test broker is a real Kafka: records go in and come out with their partition and offset,
survive a broker restart at the same address, and Spark's Kafka source reads them.

One broker for the run (`kafka_broker`), one topic per test; the Spark test uses the run's one
session (`spark`), whose `spark.jars` carry the Kafka connector (spark.embedded_jars).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from sluiceway.kafka_server import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

Record = tuple[int, int, bytes | None, bytes]  # partition, offset, key, value


def produce(bootstrap: str, topic: str, values: list[bytes], partitions: int) -> list[Record]:
    """Send each value (key = its index) to partition index % partitions, idempotently and
    acknowledged by the broker; the records as the broker stored them."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    stored: list[Record] = []
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Any) -> None:
        if error is not None:
            failed.append(error)
        else:
            stored.append((message.partition(), message.offset(), message.key(), message.value()))

    for index, value in enumerate(values):
        producer.produce(
            topic, value=value, key=str(index).encode(), partition=index % partitions,
            on_delivery=delivered,
        )  # fmt: skip
    assert producer.flush(30) == 0, "not every record was delivered within 30 s"
    assert not failed, failed
    return sorted(stored)


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Record]:
    """Read `count` records of every partition of `topic` from its start (assigned, so no
    consumer group has to form first)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, number, OFFSET_BEGINNING) for number in partitions])
    read: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(read) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            read.append((message.partition(), message.offset(), message.key(), message.value()))
    finally:
        consumer.close()
    return sorted(read)


def test_records_come_back_with_the_partition_and_offset_they_were_stored_at(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    kafka_broker.create_topic(kafka_topic, partitions=3)
    values = [f"txn-{index},acc-{index % 7},12.{index:02d}".encode() for index in range(30)]
    stored = produce(kafka_broker.bootstrap, kafka_topic, values, partitions=3)
    assert [offset for partition, offset, _, _ in stored if partition == 1] == list(range(10))
    assert consume(kafka_broker.bootstrap, kafka_topic, len(values)) == stored


def test_records_survive_a_broker_restart_at_the_same_address(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    kafka_broker.create_topic(kafka_topic, partitions=2)
    before = produce(kafka_broker.bootstrap, kafka_topic, [b"a", b"b", b"c", b"d"], 2)
    address = kafka_broker.bootstrap
    kafka_broker.restart()
    assert kafka_broker.bootstrap == address
    assert consume(address, kafka_topic, 4) == before
    after = produce(address, kafka_topic, [b"e", b"f"], 2)
    assert [(partition, offset) for partition, offset, _, _ in after] == [(0, 2), (1, 2)]
    assert consume(address, kafka_topic, 6) == sorted(before + after)


def test_a_topic_is_never_created_by_producing_to_it(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "message.timeout.ms": 3000})
    errors: list[KafkaError] = []
    producer.produce(kafka_topic, b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(10)
    assert [error.code() for error in errors] in (
        [KafkaError.UNKNOWN_TOPIC_OR_PART],
        [KafkaError._MSG_TIMED_OUT],
    )
    assert kafka_topic not in producer.list_topics(timeout=5).topics


def test_spark_reads_exactly_the_produced_records_with_partition_and_offset(
    spark: Any, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    kafka_broker.create_topic(kafka_topic, partitions=2)
    values = ["ok,1", "bad line", "ünïcode,3", ""]
    stored = produce(kafka_broker.bootstrap, kafka_topic, [v.encode() for v in values], 2)
    rows = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_broker.bootstrap)
        .option("subscribe", kafka_topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .select("topic", "partition", "offset", "key", "value")
        .collect()
    )
    assert {row.topic for row in rows} == {kafka_topic}
    read = sorted((row.partition, row.offset, bytes(row.key), bytes(row.value)) for row in rows)
    assert read == stored
