"""Spark side of reading: one task per record-aligned chunk, tokenized in `mapInArrow`.

`mapInArrow` (not a row UDF) hands whole Arrow batches across the JVM boundary, so the
tokenizer's Arrow output reaches Spark without a per-row Python object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sluiceway.ingest.landing import LandingChunk, LandingScan, read_chunk
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize

CHUNK_SCHEMA = (
    "path string, start bigint, end bigint, first_line_number bigint, version string, "
    "cr_line_ends boolean"
)


def tokenize_chunks(
    max_record_bytes: int,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The executor function: read each chunk's byte range and yield its records."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                chunk = LandingChunk(**row)
                records = tokenize(read_chunk(chunk), chunk.first_line_number, max_record_bytes)
                yield from records.to_batches(max_chunksize=200_000)

    return run


def read_landing_records(
    spark: SparkSession, scan: LandingScan, max_record_bytes: int
) -> DataFrame:
    """All records of the scanned file as a DataFrame with the tokenizer's schema."""
    rows = [dataclasses.astuple(chunk) for chunk in scan.chunks]
    # One slice per chunk, so every chunk is its own task and every core works.
    slices = spark.sparkContext.parallelize(rows, max(len(rows), 1))
    chunks = spark.createDataFrame(slices, CHUNK_SCHEMA)
    return chunks.mapInArrow(tokenize_chunks(max_record_bytes), from_arrow_schema(RECORD_SCHEMA))
