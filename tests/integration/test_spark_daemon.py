"""The Python workers keep their zip archives' directories across tasks
(lib/sluiceway/spark_daemon.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sluiceway.settings import load_settings
from sluiceway.spark import DAEMON_MODULE, spark_conf

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
