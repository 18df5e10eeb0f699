"""The Glue maintenance job's retention arguments reach Iceberg's expire_snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sluiceway.job_arguments import MaintainArgs
from sluiceway.pipeline import maintain
from sluiceway.tables import ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

pytestmark = pytest.mark.integration


def test_retention_arguments_of_the_job_decide_which_snapshots_expire(
    spark: SparkSession, isolated_settings: Settings
) -> None:
    settings = isolated_settings
    table = settings.table("processing_failures")
    ensure_tables(spark, settings, ("processing_failures",))
    for wave in range(3):
        spark.sql(
            f"INSERT INTO {table} VALUES ('t{wave}', 'ing_x', 'k{wave}', 'financial', 'Timeout', "
            f"'slow', {wave}, 'b{wave}', TIMESTAMP '2026-01-0{wave + 1} 00:00:00')"
        )
    argv = ["--warehouse", settings.warehouse, "--namespace", settings.namespace]
    glue_extras = ["--JOB_NAME", "sluiceway-test-maintenance", "--job-bookmark-option", "off"]

    # What the job does with its arguments (jobs/maintain_tables.py), on the test session.
    kept = maintain(spark, MaintainArgs.parse([*argv, "--table", "processing_failures"], {}))
    assert [result.expired_snapshots for result in kept] == [0], "defaults keep a week"

    request = MaintainArgs.parse(
        [*argv, "--retention-days", "0", "--retain-last", "1", *glue_extras], {}
    )
    [expired] = [
        result for result in maintain(spark, request) if result.table == "processing_failures"
    ]
    assert expired.expired_snapshots >= 3
    assert spark.sql(f"SELECT COUNT(*) FROM {table}").collect()[0][0] == 3
