"""`--spark-master` on the commands that start Spark, over $SLUICEWAY_SPARK_MASTER."""

import pytest

from sluiceway.cli import build_parser, settings_from

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", [["run", "f.csv"], ["ingest", "f.csv"], ["process"]])
def test_spark_master_option_wins_over_the_environment(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICEWAY_SPARK_MASTER", "local[1]")
    args = build_parser().parse_args([*command, "--spark-master", "spark://127.0.0.1:7077"])
    assert settings_from(args).spark_master == "spark://127.0.0.1:7077"

    without = build_parser().parse_args(command)
    assert settings_from(without).spark_master == "local[1]"
