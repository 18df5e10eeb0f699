"""The Python workers keep their zip archives' directories across tasks, and collect then
freeze their objects as each task ends (lib/sluiceway/spark_daemon.py)."""

from __future__ import annotations

import gc
import weakref

import pyarrow as pa
import pytest

from sluiceway.settings import load_settings
from sluiceway.spark import DAEMON_MODULE, spark_conf
from sluiceway.spark_daemon import collected_then_frozen

pytestmark = pytest.mark.integration


def test_a_task_starting_does_not_read_sparks_jars_again(spark):
    def _archive_reads_on_invalidation(batches):  # a closure: pickled by value
        import importlib
        import sys
        import zipimport

        reads = []
        original = zipimport._read_directory
        zipimport._read_directory = lambda archive: reads.append(archive) or original(archive)
        try:
            importlib.invalidate_caches()
        finally:
            zipimport._read_directory = original
        archives = [entry for entry in sys.path if entry.endswith((".zip", ".jar"))]
        for _ in batches:
            pass
        yield pa.RecordBatch.from_pylist(
            [{"archives": len(archives), "reads": len(reads)}],
            schema=pa.schema([("archives", pa.int64()), ("reads", pa.int64())]),
        )

    (row,) = (
        spark.range(1, 2, 1, 1)
        .mapInArrow(_archive_reads_on_invalidation, "archives long, reads long")
        .collect()
    )
    # Spark puts its spark-core jar and pyspark.zip on the workers' path: without the daemon
    # each of them is read again here, as at the start of every task.
    assert row.archives >= 2
    assert row.reads == 0


def test_only_the_profiles_whose_workers_have_this_package_use_the_daemon():
    assert spark_conf(load_settings("local"))["spark.python.daemon.module"] == DAEMON_MODULE
    assert "spark.python.daemon.module" not in spark_conf(load_settings("glue"))


def test_a_worker_that_ran_a_task_has_frozen_what_survived_it(spark):
    def _frozen_objects(batches):  # a closure: pickled by value
        import gc

        for _ in batches:
            pass
        yield pa.RecordBatch.from_pylist(
            [{"frozen": gc.get_freeze_count()}], schema=pa.schema([("frozen", pa.int64())])
        )

    # Every worker of the pool runs a task first; the tasks after that find their objects
    # frozen (without the daemon's wrapper nothing is ever frozen).
    spark.range(0, 8, 1, 8).mapInArrow(_frozen_objects, "frozen long").collect()
    rows = spark.range(0, 2, 1, 2).mapInArrow(_frozen_objects, "frozen long").collect()
    assert all(row.frozen > 10_000 for row in rows), rows


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_garbage_is_collected_before_the_survivors_are_frozen():
    kept: list[_Cycle] = []
    garbage: list[weakref.ref[_Cycle]] = []

    def task() -> int:
        kept.append(_Cycle())
        garbage.append(weakref.ref(_Cycle()))  # unreachable at once, but for its cycle
        return 0

    gc.disable()
    try:
        assert collected_then_frozen(task)() == 0
        assert garbage[0]() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
