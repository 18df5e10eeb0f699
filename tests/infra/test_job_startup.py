"""What a job needs when it starts, and what it leaves behind for the state machine.

Plain functions, no JVM: the startup conf per profile (the one source of spark-submit's,
Glue's and EMR Serverless's conf), the spark-submit check that names the missing `--jars`,
the template tokens that render that conf, and the outcome document a job writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError, ExitCode
from sluiceway.orchestration.outcome import outcome_of, outcome_uri, record_outcome
from sluiceway.orchestration.template import render_template
from sluiceway.settings import load_settings
from sluiceway.spark import (
    EMR_ICEBERG_JAR,
    EMR_PYTHON,
    check_submitted_with_iceberg,
    iceberg_runtime_jar,
    kafka_connector_jars,
    spark_submit_command,
    startup_conf,
)

pytestmark = pytest.mark.unit

SPARK_SUBMIT_ENV = {"PYSPARK_GATEWAY_PORT": "41234"}


def test_the_local_startup_conf_carries_the_iceberg_jar_the_heap_and_the_catalog(
    tmp_path: Path,
) -> None:
    settings = load_settings(arguments={"warehouse": str(tmp_path), "driver_memory": "2g"})
    conf = startup_conf(settings)
    jars = conf["spark.jars"].split(",")
    assert jars == [str(iceberg_runtime_jar()), *map(str, kafka_connector_jars())]
    assert conf["spark.driver.memory"] == "2g"
    assert conf["spark.sql.catalog.lake.warehouse"] == str(tmp_path.resolve())
    assert "spark.sql.session.timeZone" not in conf, "runtime conf is set by the session"


def test_batch_on_an_s3_warehouse_also_gets_the_iceberg_aws_bundle(tmp_path: Path) -> None:
    batch = startup_conf(load_settings(arguments={"profile": "batch", "warehouse": "s3://w/"}))
    runtime, *kafka, bundle = batch["spark.jars"].split(",")
    assert runtime == str(iceberg_runtime_jar())
    assert kafka == [str(jar) for jar in kafka_connector_jars()], "Spark's Kafka source"
    assert Path(bundle).name == "iceberg-aws-bundle-1.10.0.jar" and Path(bundle).is_file()
    local = startup_conf(load_settings(arguments={"warehouse": str(tmp_path)}))
    assert "aws-bundle" not in local["spark.jars"], "a local warehouse needs no AWS SDK"


def test_glue_gets_no_jar_and_emr_gets_its_own_jar_and_the_image_python() -> None:
    glue = startup_conf(load_settings(arguments={"profile": "glue", "warehouse": "s3://w/"}))
    assert "spark.jars" not in glue
    assert glue["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    emr = startup_conf(
        load_settings(arguments={"profile": "emr-serverless", "warehouse": "s3://w/"})
    )
    assert emr["spark.jars"] == EMR_ICEBERG_JAR
    assert emr["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == EMR_PYTHON
    assert emr["spark.executorEnv.PYSPARK_PYTHON"] == EMR_PYTHON


def test_the_spark_submit_command_puts_the_conf_before_the_script(tmp_path: Path) -> None:
    settings = load_settings(arguments={"warehouse": str(tmp_path), "spark_master": "local[2]"})
    command = spark_submit_command(settings, Path("jobs/x.py"), ["--source", "f"], "spark-submit")
    assert command[:3] == ["spark-submit", "--master", "local[2]"]
    assert f"spark.jars={iceberg_runtime_jar()}," in " ".join(command)
    assert command[-3:] == ["jobs/x.py", "--source", "f"]


def test_spark_submit_without_the_iceberg_runtime_is_told_the_jars_to_pass() -> None:
    with pytest.raises(ConfigurationError) as error:
        check_submitted_with_iceberg({"spark.jars": ""}, SPARK_SUBMIT_ENV)
    assert f"--jars {iceberg_runtime_jar()}" in str(error.value)
    assert error.value.exit_code == ExitCode.BAD_INPUT


def test_spark_submit_with_the_runtime_or_a_plain_python_process_passes() -> None:
    check_submitted_with_iceberg({"spark.jars": str(iceberg_runtime_jar())}, SPARK_SUBMIT_ENV)
    classpath = {"spark.driver.extraClassPath": "/opt/iceberg-spark-runtime-3.5_2.12-1.9.2.jar"}
    check_submitted_with_iceberg(classpath, SPARK_SUBMIT_ENV)
    check_submitted_with_iceberg({}, {})  # no spark-submit: the session builder adds the jar


def test_an_unknown_conf_token_names_the_template_line(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("a: 1\nb: !Sub '{{glue-conf:nowhere}}'\n")
    with pytest.raises(ConfigurationError, match=r"t\.yaml:2: \{\{glue-conf:nowhere\}\}"):
        render_template(template, tmp_path / "out.yaml")


@pytest.mark.parametrize(
    ("code", "name", "kind"),
    [
        (0, "OK", "succeeded"),
        (2, "BAD_INPUT", "data"),
        (3, "RECONCILIATION_FAILED", "data"),
        (4, "BUSY", "retry-later"),
        (5, "ENDPOINT_UNAVAILABLE", "retry-later"),
        (1, "UNEXPECTED", "infrastructure"),
        (137, "UNEXPECTED", "infrastructure"),
    ],
)
def test_every_exit_code_has_an_outcome_kind(code: int, name: str, kind: str) -> None:
    assert outcome_of(code) == {"exit_code": code, "name": name, "kind": kind}


def test_a_job_writes_its_outcome_where_told_and_keeps_its_exit_code(tmp_path: Path) -> None:
    target = tmp_path / "_outcomes" / "e1" / "ingest-1.json"
    argv = ["--source", "f.csv", "--outcome-uri", str(target), "--profile", "local"]
    assert outcome_uri(argv) == str(target)
    assert record_outcome(4, argv) == 4
    assert json.loads(target.read_text())["name"] == "BUSY"
    assert record_outcome(0, ["--source", "f.csv"]) == 0  # no --outcome-uri: nothing written


def test_a_failure_to_write_the_outcome_never_changes_the_exit_code(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert record_outcome(3, ["--outcome-uri", str(blocked / "outcome.json")]) == 3
