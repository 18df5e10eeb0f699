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

# The training run, a module of its own: it imports the whole pipeline, which imports this one.
TRAINING_MODULE = "sluiceway.class_archive_training"
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
            [sys.executable, "-m", TRAINING_MODULE, str(partial), scratch],
            check=True,
            capture_output=True,
        )
    if not partial.is_file():
        return None
    partial.replace(path)
    return path
