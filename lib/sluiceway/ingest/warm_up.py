"""The Python workers started while the driver's JVM does the ingest's metadata work.

A local ingest's first chunk tasks used to start Spark's worker daemon and fork its workers,
each of which then imported the chunk task's modules (pyarrow, pandas, the feed): ~2 s per
worker before its first chunk, ~0.4 s after. Meanwhile the driver's JVM spends ~3 s on
tables, ledger and the `started` row, on about one of the two cores. A job of one task per
core, started beside that work, gets the workers ready; the chunk tasks then reuse them
(Spark keeps idle workers). One 9M ingest's event log: the chunk job 16.1 -> 13.7 s; whole
processes, two rounds of 6 paired runs: medians 0.95x and 0.89x.

Local masters only: on a cluster the executors' cores are elsewhere and many.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pyarrow as pa

from sluiceway.logs import get_logger

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOGGER = get_logger(__name__)
WARM_UP_GROUP = "sluiceway-warm-up"
# How long a run that ended early waits for the warm-up (seconds: a worker's start and
# imports); only one still running after that is cancelled.
WARM_UP_WAIT_SECONDS = 60.0


@contextmanager
def workers_warming(
    spark: SparkSession, wait_seconds: float = WARM_UP_WAIT_SECONDS
) -> Iterator[None]:
    """Warm the workers up in the background while the body runs. A warm-up still running at
    the end (a file found already ingested, in ~2 s) is waited for, up to `wait_seconds`,
    not cancelled: Spark logs each killed task as a warning on the console, and a stack trace
    when the session stops under it."""
    context = spark.sparkContext
    if not str(context.master).startswith("local"):
        yield
        return
    tasks = max(context.defaultParallelism, 1)
    thread = threading.Thread(
        target=_warm_up, args=(spark, tasks), name="ingest-warm-up", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        thread.join(wait_seconds)
        if thread.is_alive():
            context.cancelJobGroup(WARM_UP_GROUP)
            thread.join()


def _warm_up(spark: SparkSession, tasks: int) -> None:
    context = spark.sparkContext
    context.setJobGroup(WARM_UP_GROUP, "start the Python workers for the chunk tasks")
    try:
        spark.range(0, tasks, 1, tasks).mapInArrow(import_task_modules, "id long").collect()
    except Exception as error:  # only a head start: the chunk tasks start workers themselves
        LOGGER.debug("worker warm-up ended early: %s", error)


def import_task_modules(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """In a worker: import what `write_chunk` needs; the batches pass through."""
    import sluiceway.ingest.write  # noqa: F401

    yield from batches
