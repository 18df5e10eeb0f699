"""Streaming ingestion: Kafka records -> the same tables, rules and processing as files.

- `records`: Kafka values -> records of the landing contract, by the file tokenizer;
- `offsets`: a micro-batch's identity (its offset ranges) and where a stream resumes;
- `batch`: one micro-batch validated, written, audited and published under the lease;
- `run`: the Structured Streaming query around them (`sluiceway stream`).
"""

from sluiceway.stream.run import (
    StreamOptions,
    StreamSummary,
    parse_kafka_options,
    stream_topic,
)

__all__ = ["StreamOptions", "StreamSummary", "parse_kafka_options", "stream_topic"]
