"""The local-aws profile is the glue profile's catalog, storage and lease, on the local stack.

Only what the stack needs may differ: a Spark started here (its jars and local options) and
path-style S3 addressing; the endpoints and credentials come in the standard AWS variables.
"""

import pytest

from sluiceway.local_stack import GLUE_DATABASE, LEASE_TABLE, LocalAwsStack
from sluiceway.query import is_athena
from sluiceway.settings import load_settings
from sluiceway.spark import spark_conf

pytestmark = pytest.mark.unit

WAREHOUSE = "s3://sluiceway-dev-warehouse/warehouse"
CATALOG = "spark.sql.catalog.lake"
# A Spark of our own in local mode: the Iceberg jars and the embedded profile's options.
LOCAL_SPARK = {
    "spark.jars",
    "spark.ui.enabled",
    "spark.driver.memory",
    "spark.sql.adaptive.enabled",
    "spark.ui.showConsoleProgress",
    "spark.driver.extraJavaOptions",
    "spark.sql.shuffle.partitions",
    "spark.python.daemon.module",
}


def conf(profile: str) -> dict[str, str]:
    return spark_conf(load_settings(arguments={"profile": profile, "warehouse": WAREHOUSE}))


def test_the_catalog_and_storage_are_the_glue_profiles_with_path_style_s3() -> None:
    glue, local_aws = conf("glue"), conf("local-aws")
    differs = {key for key in glue.keys() | local_aws.keys() if glue.get(key) != local_aws.get(key)}
    assert differs == LOCAL_SPARK | {f"{CATALOG}.s3.path-style-access"}
    assert local_aws[f"{CATALOG}.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert local_aws[f"{CATALOG}.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert "iceberg-aws-bundle" in local_aws["spark.jars"]
    assert not [key for key in local_aws if "endpoint" in key], "endpoints come from AWS_*"


def test_the_profile_names_the_stacks_warehouse_database_and_lease_table() -> None:
    settings = load_settings(environ={"SLUICEWAY_PROFILE": "local-aws"})
    assert settings.warehouse.startswith("s3://")
    assert (settings.namespace, settings.lease_table) == (GLUE_DATABASE, LEASE_TABLE)
    assert settings.spark_master.startswith("local")
    assert settings.staging_location() == f"{settings.warehouse}/_staging"


def test_analyst_queries_on_the_stack_run_on_duckdb_not_athena() -> None:
    assert is_athena(load_settings(arguments={"profile": "glue", "warehouse": WAREHOUSE}))
    assert not is_athena(load_settings(arguments={"profile": "local-aws"}))


def test_the_stack_environment_sends_every_aws_call_to_the_stack(tmp_path) -> None:
    stack = LocalAwsStack("http://127.0.0.1:8333", "http://127.0.0.1:5000", tmp_path)
    environ = stack.environ({"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "real", "HOME": "/h"})
    assert "AWS_PROFILE" not in environ and "AWS_SESSION_TOKEN" not in environ
    assert environ["HOME"] == "/h"
    assert environ["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:8333"
    endpoints = {k: v for k, v in environ.items() if k.startswith("AWS_ENDPOINT_URL")}
    assert set(endpoints.values()) == {stack.s3_url, stack.aws_api_url}
    assert environ["AWS_ENDPOINT_URL"] == stack.aws_api_url, "any other service: moto"
    assert environ["SLUICEWAY_PROFILE"] == "local-aws"
