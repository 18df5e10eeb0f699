"""Spark side of reading: one task per record-aligned chunk, tokenized in `mapInArrow`.

`mapInArrow` (not a row UDF) hands whole Arrow batches across the JVM boundary, so the
tokenizer's Arrow output reaches Spark without a per-row Python object.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sluiceway.ingest.landing import LandingScan, read_range
from sluiceway.ingest.parse import RECORD_SCHEMA, tokenize

CHUNK_SCHEMA = "path string, start bigint, end bigint, first_line_number bigint"


def tokenize_chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Runs on executors: read each chunk's byte range and yield its records."""
    for batch in batches:
        for chunk in batch.to_pylist():
            data = read_range(chunk["path"], chunk["start"], chunk["end"])
            yield from tokenize(data, chunk["first_line_number"]).to_batches(max_chunksize=200_000)


def read_landing_records(spark: SparkSession, scan: LandingScan) -> DataFrame:
    """All records of the scanned file as a DataFrame with the tokenizer's schema."""
    rows = [(c.path, c.start, c.end, c.first_line_number) for c in scan.chunks]
    # One slice per chunk, so every chunk is its own task and every core works.
    slices = spark.sparkContext.parallelize(rows, max(len(rows), 1))
    chunks = spark.createDataFrame(slices, CHUNK_SCHEMA)
    return chunks.mapInArrow(tokenize_chunks, from_arrow_schema(RECORD_SCHEMA))
