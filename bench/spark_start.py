"""Benchmark: a local Spark session's start up to its first Iceberg query, with and without
the class archive that `sluiceway jars` writes (lib/sluiceway/class_archive.py).

Each start is a fresh process (the JVM maps the archive when it starts); the two kinds run in
turn, A B A B ..., so a drift of the machine's speed hits both, and the medians and their
ratio are printed:

    make bench-startup
    .venv/bin/python bench/spark_start.py --runs 7
    .venv/bin/python bench/spark_start.py --once [--without-class-archive]  # one start
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from sluiceway import class_archive
from sluiceway.settings import Settings
from sluiceway.spark import LOG4J_CONF, build_session


def start_once(without_class_archive: bool) -> None:
    """One session and one Iceberg catalog call, in this process."""
    with tempfile.TemporaryDirectory(prefix="sluiceway-start-") as warehouse:
        conf = (
            {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONF}"}
            if without_class_archive
            else {}
        )
        settings = Settings(spark_master="local[2]", warehouse=warehouse, extra_spark_conf=conf)
        spark = build_session(settings)
        spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.start").collect()
        spark.stop()


def timed(without_class_archive: bool) -> float:
    command = [sys.executable, __file__, "--once"]
    if without_class_archive:
        command.append("--without-class-archive")
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument("--once", action="store_true", help="one start in this process")
    parser.add_argument(
        "--without-class-archive",
        action="store_true",
        help="with --once: the driver JVM without the class archive",
    )
    args = parser.parse_args()
    if args.once:
        start_once(args.without_class_archive)
        return
    if not class_archive.java_options():
        sys.exit("no class archive for this runtime: run `sluiceway jars` (make jars) first")
    timed(False)  # a warm-up: the page cache holds the jars and the archive for both kinds
    pairs = [(timed(False), timed(True)) for _ in range(args.runs)]
    archived = statistics.median(a for a, _ in pairs)
    plain = statistics.median(b for _, b in pairs)
    ratio = statistics.median(a / b for a, b in pairs)
    fastest = min(a for a, _ in pairs), min(b for _, b in pairs)
    print(f"with the class archive    median {archived:5.1f} s  (min {fastest[0]:.1f})")
    print(f"without it                median {plain:5.1f} s  (min {fastest[1]:.1f})")
    print(f"with / without            median ratio of {args.runs} pairs {ratio:.2f}")


if __name__ == "__main__":
    main()
