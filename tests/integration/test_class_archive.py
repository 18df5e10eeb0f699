"""The Spark class archive: written by `sluiceway jars`, mapped by every local session.

The archive is what takes a local Spark start from ~6 s to ~4 s (class_archive). These tests
prove a session maps its classes from it (the JVM's own class-load log names the archive as
the source), that its name changes with anything it was made from, and that a damaged or
foreign archive costs nothing but the speed: the JVM starts, silently.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluiceway import class_archive
from sluiceway.settings import Settings
from sluiceway.spark import spark_conf

pytestmark = pytest.mark.integration

# A session and one Iceberg query; the JVM logs where each class came from.
SESSION_WITH_CLASS_LOG = textwrap.dedent(
    """
    import sys
    from sluiceway.settings import Settings
    from sluiceway.spark import build_session, spark_conf

    options = spark_conf(Settings())["spark.driver.extraJavaOptions"]
    settings = Settings(
        spark_master="local[1]",
        warehouse=sys.argv[2],
        extra_spark_conf={
            "spark.driver.extraJavaOptions": f"{options} -Xlog:class+load=info:file={sys.argv[1]}"
        },
    )
    spark = build_session(settings)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS lake.archive_check").collect()
    """
)


def test_the_archive_name_follows_the_java_build_pyspark_and_the_jar_lock() -> None:
    base = class_archive.archive_name("openjdk 17.0.15", "3.5.6", "iceberg 1.9.2 sha")
    assert base.startswith("spark-") and base.endswith(".jsa")
    assert class_archive.archive_name("openjdk 17.0.16", "3.5.6", "iceberg 1.9.2 sha") != base
    assert class_archive.archive_name("openjdk 17.0.15", "3.5.7", "iceberg 1.9.2 sha") != base
    assert class_archive.archive_name("openjdk 17.0.15", "3.5.6", "iceberg 1.10.0 sha") != base


def test_a_local_session_maps_most_of_its_classes_from_the_archive(tmp_path: Path) -> None:
    archive = class_archive.archive_path()
    assert archive is not None and archive.is_file(), "run `sluiceway jars` (make jars) first"
    assert (
        f"-XX:SharedArchiveFile={archive}"
        in spark_conf(Settings())["spark.driver.extraJavaOptions"]
    )
    log = tmp_path / "classes.txt"
    subprocess.run(
        [sys.executable, "-c", SESSION_WITH_CLASS_LOG, str(log), str(tmp_path / "warehouse")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    lines = log.read_text().splitlines()
    from_archive = [line for line in lines if "source: shared objects file (top)" in line]
    iceberg = [line for line in from_archive if " org.apache.iceberg." in line]
    assert len(from_archive) > 0.6 * len(lines), (len(from_archive), len(lines))
    assert iceberg, "Iceberg's classes (a spark.jars jar) come from the archive too"


def test_a_damaged_archive_costs_only_the_speed(tmp_path: Path) -> None:
    path = class_archive.archive_path(tmp_path)
    assert path is not None
    path.write_bytes(b"not an archive" * 1000)
    options = class_archive.java_options(tmp_path).split()
    java = class_archive.java_executable()
    assert java is not None
    started = subprocess.run([java, *options, "-version"], capture_output=True, text=True)
    assert started.returncode == 0
    assert "cds" not in (started.stdout + started.stderr).lower()


def test_without_an_archive_the_session_starts_without_one(tmp_path: Path) -> None:
    assert class_archive.java_options(tmp_path / "empty") == ""


@pytest.mark.parametrize(("options", "built"), [([], True), (["--no-class-archive"], False)])
def test_sluiceway_jars_writes_the_archive_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], built: bool
) -> None:
    """In process, the archive's location and its (minute-long) training run replaced."""
    from sluiceway import cli

    written: list[Path] = []
    missing = tmp_path / "spark-test.jsa"
    monkeypatch.setattr(class_archive, "archive_path", lambda directory=None: missing)
    monkeypatch.setattr(
        class_archive, "build_archive", lambda directory=None: written.append(missing)
    )
    assert cli.main(["jars", *options]) == 0
    assert written == ([missing] if built else [])
