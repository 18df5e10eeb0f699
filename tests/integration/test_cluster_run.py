"""`sluiceway run` on a Spark standalone cluster (a master and two workers on 127.0.0.1).

Executors here are JVMs of their own, started by workers with private scratch folders, so
these runs fail where `local[*]` cannot: a staged file only the driver can read, an S3 read
that only works with the driver's settings, Python workers without the venv's packages.
Each run is checked end to end: exit code, the ledger and the table counts read back by
DuckDB against the generator's manifest, and executors on both workers doing tasks.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.s3_server import S3Endpoint
from fixtures.spark_cluster import SparkCluster
from sluiceway.generate import Manifest, generate_landing_file, manifest_path
from sluiceway.settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

NAMESPACE = "cluster"
RUN_SECONDS = 420


def sluiceway_run(
    cluster: SparkCluster, s3_server: S3Endpoint, tmp_path: Path, landing: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Settings, set[str]]:
    """Run the CLI as a user would, against the cluster; returns the new application ids too."""
    settings = load_settings(
        arguments={"warehouse": str(tmp_path / "warehouse"), "namespace": NAMESPACE}
    )
    env = {
        **s3_server.job_environ(),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SLUICEWAY_NAMESPACE": NAMESPACE,
        "SLUICEWAY_PARSE_CHUNK_MB": "1",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "4",
        "SLUICEWAY_DRIVER_MEMORY": "1g",
        # Every executor runs on this machine, so a test folder is a path they all can read.
        "SLUICEWAY_STAGING_DIR": str(tmp_path / "staging"),
    }
    before = {app["id"] for app in cluster.completed_applications("sluiceway-run")}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "sluiceway"),
            "run",
            landing,
            "--warehouse",
            settings.warehouse,
            "--spark-master",
            cluster.master_url,
            "--batch-size",
            "500",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    after = {app["id"] for app in cluster.completed_applications("sluiceway-run")}
    return result, settings, after - before


def assert_reconciled_on_the_cluster(
    run: tuple[subprocess.CompletedProcess[str], Settings, set[str]],
    manifest: Manifest,
    cluster: SparkCluster,
    duckdb_query,
) -> Settings:
    result, settings, applications = run
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "manifest matched" in result.stdout
    assert ": reconciled" in result.stdout

    ledger = duckdb_query(
        settings, "SELECT status, lines_read, accepted, rejected FROM ingest_ledger"
    )
    assert ledger == [("completed", manifest.lines, manifest.accepted, manifest.rejected)]
    assert manifest.accepted + manifest.rejected == manifest.records
    assert duckdb_query(settings, "SELECT COUNT(*) FROM transactions") == [(manifest.accepted,)]
    assert duckdb_query(settings, "SELECT COUNT(*) FROM rejected_records") == [(manifest.rejected,)]
    ((processed, failed),) = duckdb_query(
        settings,
        "SELECT (SELECT COUNT(*) FROM processed_transactions), "
        "(SELECT COUNT(*) FROM processing_failures)",
    )
    assert processed + failed == manifest.accepted

    (application,) = applications
    for worker, worker_logs in zip(
        cluster.workers, cluster.executor_logs(application), strict=True
    ):
        assert worker_logs, f"a worker ran no executor of {application}"
        logs = "".join(log.read_text() for log in worker_logs)
        assert "Running task" in logs
        # Scratch (shuffle and spill files) stays in the worker's own folder.
        assert f"Created local directory at {worker.local_dir}/" in logs
    return settings


def test_gzip_landing_file_reconciles_on_the_cluster(
    spark_cluster: SparkCluster, s3_server: S3Endpoint, tmp_path: Path, duckdb_query
) -> None:
    """The .gz is unpacked to staging by the driver and read back in ranges by executors."""
    landing = tmp_path / "partner-2026-11-25.csv.gz"
    manifest = generate_landing_file(landing, 10_000, seed=31, defect_rate=0.01, compress=True)

    run = sluiceway_run(spark_cluster, s3_server, tmp_path, str(landing))

    assert_reconciled_on_the_cluster(run, manifest, spark_cluster, duckdb_query)
    assert not any((tmp_path / "staging").iterdir()), "the staged copy was left behind"


def test_overwritten_s3_object_reconciles_its_recorded_version_on_the_cluster(
    spark_cluster: SparkCluster,
    s3_server: S3Endpoint,
    versioned_bucket: str,
    tmp_path: Path,
    duckdb_query,
) -> None:
    """The event named version 1; the partner resent the key before the run started."""
    original, resent = tmp_path / "original.csv", tmp_path / "resent.csv"
    manifest = generate_landing_file(original, 8_000, seed=32, defect_rate=0.01)
    generate_landing_file(resent, 500, seed=33)
    key = "incoming/2026-11-25/partner.csv"
    client = s3_server.client()
    first = client.put_object(Bucket=versioned_bucket, Key=key, Body=original.read_bytes())
    client.put_object(
        Bucket=versioned_bucket,
        Key=f"{key}.manifest.json",
        Body=manifest_path(original).read_bytes(),
    )
    client.put_object(Bucket=versioned_bucket, Key=key, Body=resent.read_bytes())

    run = sluiceway_run(
        spark_cluster,
        s3_server,
        tmp_path,
        f"s3://{versioned_bucket}/{key}",
        "--source-version",
        first["VersionId"],
    )

    settings = assert_reconciled_on_the_cluster(run, manifest, spark_cluster, duckdb_query)
    assert duckdb_query(settings, "SELECT source_version, sha256 FROM ingest_ledger") == [
        (first["VersionId"], hashlib.sha256(original.read_bytes()).hexdigest())
    ]
