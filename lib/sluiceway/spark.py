"""The one place a SparkSession is built, from one conf mapping per profile.

It is also the one place that says what a driver needs when its JVM starts (`startup_conf`):
`sluiceway submit` passes it to spark-submit, and the template render step writes it into
the Glue jobs' `--conf` and the EMR Serverless sparkSubmitParameters.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway import class_archive
from sluiceway.errors import ConfigurationError
from sluiceway.locations import is_s3
from sluiceway.logs import get_logger, log_event, spark_log_file
from sluiceway.runtime_jars import (
    ICEBERG_AWS_BUNDLE,
    ICEBERG_SPARK_RUNTIME,
    KAFKA_CONNECTOR,
    installed_jar,
    pinned_jars,
)
from sluiceway.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
MIN_JAVA = 17
PROGRESS_EVERY_SECONDS = 5.0
LOGGER = get_logger(__name__)
# Spark's own chatter (its WARN lines, its start-up banner) drowns the job's progress lines:
# errors only, on stderr, for jobs and piped runs; everything into a file beside sluiceway's
# log file on a terminal; Spark's own defaults at --log-level DEBUG (spark_log_options).
LOG4J_CONF = Path(__file__).parent / "data" / "log4j2.properties"
LOG4J_FILE_CONF = Path(__file__).parent / "data" / "log4j2-file.properties"
# The job scripts of a repository checkout (they are not part of the wheel).
JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
ICEBERG_RUNTIME = "iceberg-spark-runtime"
# The profiles whose Spark we start ourselves (local mode), with the jars runtime_jars fetched.
EMBEDDED_PROFILES = ("local", "batch", "local-aws")
DAEMON_MODULE = "sluiceway.spark_daemon"
# EMR Serverless: the Iceberg runtime EMR ships, and the Python 3.11 that the custom image
# (infra/emr-serverless/Dockerfile) installs; see docs/adr/0006-emr-serverless-custom-image.md.
EMR_ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
EMR_PYTHON = "/usr/bin/python3.11"
# The JIT of a local driver that only ingests files: C1 only, no C2 compiler thread. Such a
# JVM does a few seconds of metadata calls (tables, ledger, commits) while Python workers do
# the rows, and C2 spent CPU on code that never got hot, CPU the workers needed on 2 cores:
# `sluiceway ingest` of 9M records 25.5 s instead of 29.3 s (median of 5 paired runs), a
# 30M-record day's ingest 64 s instead of 81 s. Processing keeps C2: its JVM sorts the day
# and feeds the handler Arrow batches, and took 454 s instead of 284 s with C1 only.
QUICK_JIT = "-XX:TieredStopAtLevel=1"
# Conf read when the driver JVM starts or the first session is created: a running driver
# ignores it (its class path and heap are fixed), so it must come with the submission.
_STARTUP_KEYS = (
    "spark.jars",
    "spark.python.daemon.module",
    "spark.sql.extensions",
    "spark.driver.memory",
    "spark.driver.extraJavaOptions",
)


def iceberg_runtime_jar() -> Path:
    """Iceberg's Spark runtime as `make venv` fetched it from Maven Central (runtime_jars)."""
    return installed_jar(ICEBERG_SPARK_RUNTIME)


def kafka_connector_jars() -> list[Path]:
    """Spark's Kafka source and what it needs beyond Spark's own jars, as `make venv` fetched
    them (runtime_jars.KAFKA_CONNECTOR): with these on `spark.jars`, `format("kafka")` reads
    and streams from a broker in every embedded session."""
    return [installed_jar(artifact) for artifact in KAFKA_CONNECTOR]


def embedded_jars(settings: Settings) -> str:
    """`spark.jars` of a Spark we start: the Iceberg runtime, Spark's Kafka source, and for S3
    Iceberg's AWS bundle.

    S3FileIO and GlueCatalog live in the AWS bundle; Iceberg's own S3FileIO reads `s3://` and
    `s3a://` alike, so no hadoop-aws is needed.
    """
    jars = [iceberg_runtime_jar(), *kafka_connector_jars()]
    if is_s3(settings.warehouse):
        jars.append(installed_jar(ICEBERG_AWS_BUNDLE))
    return ",".join(str(jar) for jar in jars)


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


def spark_conf(settings: Settings, *, jars: bool = True, quick_jit: bool = False) -> dict[str, str]:
    """The Spark configuration of a profile: the catalog type and storage, never the logic.

    `jars=False` when spark-submit started the driver: its `--jars` or `--packages` already
    put Iceberg on the class path and ship to the executors, and are left as they are.
    `quick_jit`: a local driver that only ingests files (`QUICK_JIT`).
    """
    catalog = f"spark.sql.catalog.{settings.catalog}"
    conf = {
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.iceberg.handle-timestamp-without-timezone": "false",
    }
    if settings.profile in EMBEDDED_PROFILES and jars:
        conf["spark.jars"] = embedded_jars(settings)
    if settings.profile == "local-aws" or (
        settings.profile in EMBEDDED_PROFILES and not is_s3(settings.warehouse)
    ):
        conf.update(
            {
                "spark.ui.enabled": "false",
                "spark.driver.memory": settings.driver_memory,
                "spark.sql.adaptive.enabled": "true",
                "spark.ui.showConsoleProgress": "false",
            }
        )
        jit = QUICK_JIT if quick_jit else ""
        java_options = " ".join(
            part
            for part in (spark_log_options(settings), jit, class_archive.java_options())
            if part
        )
        if java_options:
            conf["spark.driver.extraJavaOptions"] = java_options
    if settings.profile in ("local", "batch") and not is_s3(settings.warehouse):
        conf.update(
            {
                f"{catalog}.type": "hadoop",
                f"{catalog}.warehouse": str(Path(settings.warehouse).resolve()),
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
    if settings.profile == "local-aws":
        # The one storage difference from AWS: the endpoint (AWS_ENDPOINT_URL_S3, read by the
        # AWS SDK itself) has no bucket subdomains, so buckets go in the path.
        conf[f"{catalog}.s3.path-style-access"] = "true"
    if settings.profile in EMBEDDED_PROFILES:
        # The workers run this interpreter, which has this package (lib/sluiceway/spark_daemon.py).
        conf["spark.python.daemon.module"] = DAEMON_MODULE
    conf.update(settings.extra_spark_conf)
    return conf


def spark_log_options(settings: Settings) -> str:
    """The driver's Java options that say where Spark's own log goes ("" = Spark's defaults).

    The driver's JVM reads its log4j configuration once, when it starts, so this is part of
    the startup conf.
    """
    if settings.log_level.upper() == "DEBUG":
        return ""
    if settings.log_file:
        spark_log = shlex.quote(spark_log_file(settings.log_file))
        return f"-Dlog4j2.configurationFile={LOG4J_FILE_CONF} -Dsluiceway.spark.log={spark_log}"
    return f"-Dlog4j2.configurationFile={LOG4J_CONF}"


def startup_conf(settings: Settings) -> dict[str, str]:
    """What the submission must carry: spark-submit `--conf`, Glue `--conf`, EMR parameters.

    The Iceberg jar, the SQL extensions, the catalog and the driver's heap and Java options;
    on EMR Serverless also EMR's own Iceberg runtime and the image's Python 3.11 for the
    driver and the executors.
    """
    catalog = f"spark.sql.catalog.{settings.catalog}"
    conf = {
        key: value
        for key, value in spark_conf(settings).items()
        if key in _STARTUP_KEYS or key == catalog or key.startswith(f"{catalog}.")
    }
    if settings.profile == "emr-serverless":
        conf["spark.jars"] = EMR_ICEBERG_JAR
        conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = EMR_PYTHON
        conf["spark.executorEnv.PYSPARK_PYTHON"] = EMR_PYTHON
    return conf


def spark_submit_command(
    settings: Settings, script: Path, arguments: Sequence[str], spark_submit: str
) -> list[str]:
    """The spark-submit command line that starts `script` with everything it needs."""
    command = [spark_submit]
    if settings.spark_master:
        command += ["--master", settings.spark_master]
    for key, value in startup_conf(settings).items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(script), *arguments]


def check_submitted_with_iceberg(jvm_conf: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """Name the missing `--jars` when spark-submit started the driver without Iceberg.

    spark-submit launches the driver JVM before any job code runs, so a `spark.jars` set by
    `build_session` reaches the executors but never the driver's class path, and the first
    catalog call fails with ClassNotFoundException: IcebergSparkSessionExtensions.
    """
    if "PYSPARK_GATEWAY_PORT" not in environ:
        return  # a plain Python process: the session builder starts the JVM with spark.jars
    loaded = ",".join(
        jvm_conf.get(key, "") for key in ("spark.jars", "spark.driver.extraClassPath")
    )
    if ICEBERG_RUNTIME in loaded:
        return
    packages = f"--packages {pinned_jars()[ICEBERG_SPARK_RUNTIME].coordinate}"
    try:
        command = f"spark-submit --jars {iceberg_runtime_jar()} jobs/<job>.py ... (or {packages})"
    except ConfigurationError:  # not fetched here: spark-submit can fetch it from Maven Central
        command = f"spark-submit {packages} jobs/<job>.py ..."
    raise ConfigurationError(
        f"spark-submit started the Spark driver without the Iceberg runtime, so "
        f"{ICEBERG_EXTENSIONS} cannot load (a jar added after the driver started never "
        f"reaches its class path); pass it when submitting: {command}, "
        "or let `sluiceway submit <job> -- <job arguments>` build the whole command"
    )


def _jvm_conf() -> dict[str, str]:
    """spark.* properties of the driver JVM that spark-submit started (its --jars, --conf)."""
    from pyspark import SparkConf, SparkContext

    # Connects to spark-submit's JVM (starts nothing); only then does SparkConf load its
    # properties instead of an empty Python-side dict.
    SparkContext._ensure_initialized()
    conf = SparkConf()
    return {key: conf.get(key, "") for key in ("spark.jars", "spark.driver.extraClassPath")}


def submit_job(
    settings: Settings,
    job: str,
    arguments: Sequence[str],
    *,
    print_only: bool = False,
    jobs_dir: Path = JOBS_DIR,
) -> int:
    """Run `jobs/<job>.py` through spark-submit with the startup conf; its exit code."""
    script = jobs_dir / f"{job.removesuffix('.py')}.py"
    if not script.is_file():
        known = ", ".join(sorted(path.stem for path in jobs_dir.glob("*.py"))) or "none"
        raise ConfigurationError(
            f"no job script {script}; run from a repository checkout (jobs: {known})"
        )
    local = Path(sys.executable).parent / "spark-submit"
    spark_submit = str(local) if local.exists() else shutil.which("spark-submit")
    if spark_submit is None:
        raise ConfigurationError("spark-submit not found; run `make venv` (pyspark provides it)")
    command = spark_submit_command(settings, script, arguments, spark_submit)
    if print_only:
        print(shlex.join(command))
        return 0
    # The driver and its Python workers must run this interpreter (it has the dependencies).
    environ = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return subprocess.run(command, env=environ, check=False).returncode


def build_session(
    settings: Settings, app_name: str = "sluiceway", *, quick_jit: bool = False
) -> SparkSession:
    """Build (or join, on Glue and EMR) the SparkSession for these settings; `quick_jit`: a
    local driver that only ingests files (`QUICK_JIT`)."""
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if settings.profile in EMBEDDED_PROFILES:
        check_java()
        if submitted:
            check_submitted_with_iceberg(_jvm_conf(), os.environ)
        # Python workers must run this interpreter (it has pyarrow), not whatever python3 is first.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if settings.spark_master:
        builder = builder.master(settings.spark_master)
    for key, value in spark_conf(settings, jars=not submitted, quick_jit=quick_jit).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


@contextmanager
def task_progress(
    spark: SparkSession,
    unit: str,
    total: int,
    say: Callable[[str], None],
    lines: int = 0,
) -> Iterator[None]:
    """Report `unit done/total` and the rate every few seconds while the body runs Spark jobs.

    Counted from Spark's status tracker (completed tasks of the running stages), so it works
    the same on a laptop and on a cluster; each report is also a JSON log line.
    """
    tracker = spark.sparkContext.statusTracker()
    started = time.monotonic()

    def report() -> None:
        done = sum(
            info.numCompletedTasks
            for stage in tracker.getActiveStageIds()
            if (info := tracker.getStageInfo(stage)) is not None
        )
        done = min(done, total)
        elapsed = time.monotonic() - started
        # Tasks are about equal in size, so the lines done follow the tasks done.
        rate = lines * done / total / elapsed if total and elapsed else 0.0
        message = f"{unit} {done}/{total} done after {elapsed:.0f} s"
        if lines:
            message += f" (~{rate:,.0f} lines/s)"
        say(message)
        # No rate when the line count is not known yet (the overlapped scan is still going).
        known_rate = {"lines_per_second": round(rate)} if lines else {}
        log_event(LOGGER, message, unit=unit, done=done, total=total,
                  seconds=round(elapsed, 1), **known_rate)  # fmt: skip

    with _every(PROGRESS_EVERY_SECONDS, report):
        yield


@contextmanager
def running_tasks(
    spark: SparkSession, step: str, say: Callable[[str], None], every: float = 1.0
) -> Iterator[None]:
    """Say `step: N/M Spark tasks done after S s` whenever that changes while the body runs.

    For a person at a terminal waiting on a step that reports no counts of its own (processing,
    maintenance): without it the progress line would still say `starting Spark`.
    """
    tracker = spark.sparkContext.statusTracker()
    started = time.monotonic()
    said = [step]

    def report() -> None:
        stages = [
            info
            for stage in tracker.getActiveStageIds()
            if (info := tracker.getStageInfo(stage)) is not None
        ]
        done = sum(info.numCompletedTasks for info in stages)
        total = sum(info.numTasks for info in stages)
        message = f"{step}: {done}/{total} Spark tasks done" if stages else step
        if message != said[0]:
            say(f"{message} after {time.monotonic() - started:.0f} s")
            said[0] = message

    say(step)
    with _every(every, report):
        yield


@contextmanager
def _every(seconds: float, report: Callable[[], None]) -> Iterator[None]:
    """Call `report` every `seconds` on a daemon thread while the body runs."""
    finished = threading.Event()

    def loop() -> None:
        while not finished.wait(seconds):
            report()

    reporter = threading.Thread(target=loop, daemon=True)
    reporter.start()
    try:
        yield
    finally:
        finished.set()
        reporter.join()
