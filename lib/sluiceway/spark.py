"""The one place a SparkSession is built, from one conf mapping per profile."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.errors import ConfigurationError
from sluiceway.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
MIN_JAVA = 17
# Spark's own chatter at WARN drowns the job's progress lines on a terminal.
LOG4J_CONF = Path(__file__).parent / "data" / "log4j2.properties"


def iceberg_runtime_jar() -> Path:
    """The Iceberg Spark runtime jar shipped in the PyPI wheel pinned in setup.cfg."""
    spec = importlib.util.find_spec("snowpark_connect_deps_iceberg")
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            "the Iceberg runtime is not installed; run `make venv` "
            "(it installs snowpark-connect-deps-iceberg from setup.cfg's `local` extra)"
        )
    jars = sorted(Path(spec.origin).parent.glob("jars/iceberg-spark-runtime-3.5_2.12-*.jar"))
    if not jars:
        raise ConfigurationError(f"no iceberg-spark-runtime-3.5_2.12 jar under {spec.origin}")
    return jars[-1]


def check_java() -> int:
    """Fail with a clear message, not a JVM stack trace, when Java 17+ is missing."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ConfigurationError(
            f"Java {MIN_JAVA}+ is required for Spark and was not found on PATH or in JAVA_HOME; "
            "install it (Debian: `apt-get install openjdk-17-jre-headless`)"
        )
    banner = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', banner)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise ConfigurationError(
            f"Java {MIN_JAVA}+ is required, found {java} reporting {banner.splitlines()[:1]}; "
            "install openjdk-17 and put it first on PATH or set JAVA_HOME"
        )
    return major


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark configuration of a profile: the catalog type and storage, never the logic."""
    catalog = f"spark.sql.catalog.{settings.catalog}"
    conf = {
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.iceberg.handle-timestamp-without-timezone": "false",
    }
    if settings.profile in ("local", "batch") and not settings.warehouse.startswith("s3"):
        conf.update(
            {
                "spark.jars": str(iceberg_runtime_jar()),
                f"{catalog}.type": "hadoop",
                f"{catalog}.warehouse": str(Path(settings.warehouse).resolve()),
                "spark.ui.enabled": "false",
                "spark.driver.memory": settings.driver_memory,
                "spark.sql.adaptive.enabled": "true",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONF}",
            }
        )
    else:
        conf.update(
            {
                f"{catalog}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
                f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                f"{catalog}.warehouse": settings.warehouse,
            }
        )
        if settings.profile == "batch":
            conf["spark.jars"] = str(iceberg_runtime_jar())
    conf.update(settings.extra_spark_conf)
    return conf


def build_session(settings: Settings, app_name: str = "sluiceway") -> SparkSession:
    """Build (or join, on Glue and EMR) the SparkSession for these settings."""
    from pyspark.sql import SparkSession

    if settings.profile in ("local", "batch"):
        check_java()
        # Python workers must run this interpreter (it has pyarrow), not whatever python3 is first.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
