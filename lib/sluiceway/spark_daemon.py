"""PySpark's worker daemon, without Python 3.11 re-reading zip archives at every task.

PySpark's worker calls `importlib.invalidate_caches()` as each task starts. On Python 3.10 and
3.11 that makes every zip importer on `sys.path` read its archive's whole directory again
(CPython gh-103200; 3.12 made it lazy), and Spark puts its spark-core jar (5,221 entries) and
pyspark.zip on the workers' path: ~0.1 s of CPU and ~0.2 s of latency before every Python
task, measured with py-spy, i.e. ~6 s of a 64-chunk ingest on 2 cores. The archives do not
change while a worker lives (a file Spark adds later is a new path entry with its own
importer), so here a zip importer keeps the directory it read.

It also makes the full garbage collection PySpark's daemon runs after every task walk only
what is new: a worker that imported pyarrow, pandas and the ingest holds ~95,000 objects, and
`gc.collect()` walked them all after each task (~45 ms, ~15 % of a 16 MB chunk's task). A
worker here collects as each task ends, then freezes what survived (`gc.freeze`): garbage is
still collected, and the next collection skips the long-lived objects.

Spark starts it as `python -m sluiceway.spark_daemon` (`spark.python.daemon.module`, set by
`spark.spark_conf` for the profiles whose workers run this package's interpreter); the
workers it forks inherit the change.
"""

from __future__ import annotations

import gc
import sys
import zipimport
from collections.abc import Callable
from typing import Any


def _keep_directory(self: zipimport.zipimporter) -> None:
    """A zip importer's cache invalidation that keeps what it read (the archive is fixed)."""


def keep_zip_directories() -> None:
    """Make zip importers keep their directory on `importlib.invalidate_caches()`."""
    if sys.version_info < (3, 12):
        zipimport.zipimporter.invalidate_caches = _keep_directory  # type: ignore[method-assign]


def collected_then_frozen(run_task: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's task loop step that collects garbage as the task ends and freezes the
    survivors, so the daemon's own `gc.collect()` after it finds only new objects."""

    def run(*arguments: Any) -> Any:
        try:
            return run_task(*arguments)
        finally:
            gc.collect()
            gc.freeze()

    return run


def main() -> None:
    keep_zip_directories()
    import pyspark.daemon

    pyspark.daemon.worker = collected_then_frozen(pyspark.daemon.worker)
    pyspark.daemon.manager()  # type: ignore[no-untyped-call]  # pyspark.daemon is untyped


if __name__ == "__main__":
    main()
