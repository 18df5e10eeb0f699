"""A class-data-sharing archive of the local Spark driver: a Spark start in ~4 s, not ~6 s.

A local Spark + Iceberg session parses and verifies some 20,000 classes from jars before its
first query; on 2 cores that is most of the ~6 s (a whole process, `make bench-startup`) every
`sluiceway` command, job and test subprocess waits. The JVM can instead map those classes
from an archive written once (dynamic AppCDS, JDK 13+): `sluiceway jars` runs a short
training run (a small file ingested and processed in a scratch warehouse) whose JVM dumps the
classes it loaded at exit, and every later local session maps them.

The archive's name is a digest of the Java build, pyspark and the jar lock, so a changed runtime
never maps a stale one; the JVM also checks it itself and starts normally, silently, when it
cannot use it (`-Xshare:auto`, CDS logging off). AWS profiles never use it: their JVMs are
started by Glue, EMR or the Batch image.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sluiceway.runtime_jars import LOCK, jar_cache

# What the training run feeds through ingest and processing: enough records for every
# reason code and handler path, few enough to finish in seconds.
TRAINING_RECORDS = 2_000
_QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"


def archive_directory(prefix: str = sys.prefix) -> Path:
    """Beside the fetched jars, in this interpreter's prefix."""
    return jar_cache(prefix).parent / "class-archives"


@functools.lru_cache(maxsize=4)
def java_build(java: str) -> str:
    """The `java -version` banner: the archive is only valid for this exact JVM build."""
    return subprocess.run([java, "-version"], capture_output=True, text=True).stderr.strip()


def java_executable() -> str | None:
    """The java that pyspark starts: JAVA_HOME's, else the first on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def archive_name(java_banner: str, pyspark_version: str, jar_lock: str) -> str:
    """`spark-<digest>.jsa` of what the archived classes came from."""
    identity = "\n".join([java_banner, pyspark_version, jar_lock])
    return f"spark-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"


def archive_path(directory: Path | None = None) -> Path | None:
    """Where the archive of this runtime lives, or None without a java to ask."""
    import pyspark

    java = java_executable()
    if java is None or not Path(java).exists():
        return None
    name = archive_name(java_build(java), pyspark.__version__, LOCK.read_text())
    return (directory or archive_directory()) / name


def java_options(directory: Path | None = None) -> str:
    """Driver Java options that map the archive, or "" when there is none for this runtime."""
    path = archive_path(directory)
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} {_QUIET}"


def build_archive(directory: Path | None = None) -> Path | None:
    """Write the archive of this runtime once (a training run of ~30 s); its path, or None.

    Written under a temporary name and renamed, so a concurrent start never maps half a file.
    """
    path = archive_path(directory)
    if path is None or path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    with tempfile.TemporaryDirectory(prefix="sluiceway-class-archive-") as scratch:
        subprocess.run(
            [sys.executable, "-m", "sluiceway.class_archive", str(partial), scratch],
            check=True,
            capture_output=True,
        )
    if not partial.is_file():
        return None
    partial.replace(path)
    return path


def _train(archive: Path, scratch: Path) -> None:
    """Load what a day's run loads, then stop the JVM and wait while it writes the archive."""
    from pyspark import SparkContext

    from sluiceway.generate import generate_landing_file
    from sluiceway.ingest import ingest_file
    from sluiceway.processing import process_records
    from sluiceway.processing.run import ProcessOptions
    from sluiceway.settings import Settings
    from sluiceway.spark import LOG4J_CONF, build_session

    settings = Settings(
        warehouse=str(scratch / "warehouse"),
        spark_master="local[2]",
        driver_memory="1g",
        shuffle_partitions=2,
        staging_dir=str(scratch / "staging"),
        extra_spark_conf={
            "spark.driver.extraJavaOptions": (
                f"-Dlog4j2.configurationFile={LOG4J_CONF} -XX:ArchiveClassesAtExit={archive}"
            )
        },
    )
    landing = scratch / "landing.csv"
    generate_landing_file(landing, TRAINING_RECORDS, seed=1, defect_rate=0.05)
    spark = build_session(settings, app_name="sluiceway-class-archive")
    ingested = ingest_file(spark, settings, str(landing))
    process_records(spark, settings, ProcessOptions(), ingest_id=ingested.ingest_id)
    gateway = SparkContext._gateway
    spark.stop()
    assert gateway is not None
    gateway.shutdown()
    # The JVM exits when its stdin closes; it writes the archive on the way out.
    gateway.proc.stdin.close()
    gateway.proc.wait(timeout=600)


if __name__ == "__main__":
    _train(Path(sys.argv[1]), Path(sys.argv[2]))
