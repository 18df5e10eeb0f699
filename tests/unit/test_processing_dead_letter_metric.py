"""The DeadLetters metric the dead-letter alarm watches, published as the process job does.

CloudWatch has no local equivalent, so moto stands in for it here: the metric goes through a
real boto3 client and is read back with the dimension the pipeline stack's alarms use.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sluiceway.orchestration.metrics import (
    DEAD_LETTERS,
    METRIC_NAMESPACE,
    process_metric_data,
    publish_process_metrics,
)
from sluiceway.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="eu-west-1")


def test_a_run_without_dead_letters_still_reports_zero() -> None:
    [datum] = process_metric_data(0, "sluiceway_dev")
    assert datum["MetricName"] == DEAD_LETTERS == "DeadLetters"
    assert datum["Value"] == 0.0 and datum["Unit"] == "Count"
    assert datum["Dimensions"] == [{"Name": "Namespace", "Value": "sluiceway_dev"}]


def test_dead_letters_are_published_under_the_namespace_dimension(cloudwatch: Any) -> None:
    settings = load_settings(arguments={"namespace": "sluiceway_dev"})
    assert publish_process_metrics(cloudwatch, settings, 7) == 1
    assert publish_process_metrics(cloudwatch, settings, 2) == 1
    now = datetime.now(UTC)
    statistics = cloudwatch.get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=DEAD_LETTERS,
        Dimensions=[{"Name": "Namespace", "Value": "sluiceway_dev"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=300,
        Statistics=["Sum", "SampleCount"],
    )
    [point] = statistics["Datapoints"]
    assert (point["Sum"], point["SampleCount"]) == (9.0, 2.0)
