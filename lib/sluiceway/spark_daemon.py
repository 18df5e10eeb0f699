"""PySpark's worker daemon, without Python 3.11 re-reading zip archives at every task.

PySpark's worker calls `importlib.invalidate_caches()` as each task starts. On Python 3.10 and
3.11 that makes every zip importer on `sys.path` read its archive's whole directory again
(CPython gh-103200; 3.12 made it lazy), and Spark puts its spark-core jar (5,221 entries) and
pyspark.zip on the workers' path: ~0.1 s of CPU and ~0.2 s of latency before every Python
task, measured with py-spy, i.e. ~6 s of a 64-chunk ingest on 2 cores. The archives do not
change while a worker lives (a file Spark adds later is a new path entry with its own
importer), so here a zip importer keeps the directory it read.

Spark starts it as `python -m sluiceway.spark_daemon` (`spark.python.daemon.module`, set by
`spark.spark_conf` for the profiles whose workers run this package's interpreter); the
workers it forks inherit the change.
"""

from __future__ import annotations

import sys
import zipimport


def _keep_directory(self: zipimport.zipimporter) -> None:
    """A zip importer's cache invalidation that keeps what it read (the archive is fixed)."""


def keep_zip_directories() -> None:
    """Make zip importers keep their directory on `importlib.invalidate_caches()`."""
    if sys.version_info < (3, 12):
        zipimport.zipimporter.invalidate_caches = _keep_directory  # type: ignore[method-assign]


def main() -> None:
    keep_zip_directories()
    from pyspark.daemon import manager

    manager()  # type: ignore[no-untyped-call]  # pyspark.daemon is untyped


if __name__ == "__main__":
    main()
