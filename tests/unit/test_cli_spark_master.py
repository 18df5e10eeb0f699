"""`--spark-master` on the commands that start Spark, over $SLUICEWAY_SPARK_MASTER."""

import os

import pytest

from sluiceway.cli import build_parser
from sluiceway.job_arguments import settings_from

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "command", [["run", "f.csv"], ["ingest", "f.csv"], ["process"], ["maintain"], ["redrive"]]
)
def test_spark_master_option_wins_over_the_environment(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICEWAY_SPARK_MASTER", "local[1]")
    args = build_parser().parse_args([*command, "--spark-master", "spark://127.0.0.1:7077"])
    assert settings_from(args, os.environ).spark_master == "spark://127.0.0.1:7077"

    without = build_parser().parse_args(command)
    assert settings_from(without, os.environ).spark_master == "local[1]"
