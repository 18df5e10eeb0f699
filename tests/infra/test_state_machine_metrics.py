"""The metrics the pipeline stack's alarms watch, published as the ingest job would.

CloudWatch has no local equivalent, so moto stands in for it here: the test puts the metrics
through a real boto3 client and reads them back with the dimension the alarms use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sluiceway.ingest import IngestResult
from sluiceway.orchestration.metrics import (
    METRIC_NAMESPACE,
    REJECTED_RATIO,
    ingest_metric_data,
    publish_ingest_metrics,
)
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

RESULT = IngestResult(
    ingest_id="ing_0123456789abcdef0123",
    source_file="s3://landing/incoming/a.csv",
    status="completed",
    lines_read=1000,
    accepted=950,
    rejected=50,
)


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="eu-west-1")


def test_reject_ratio_and_reconciliation_flag_per_file() -> None:
    by_name = {item["MetricName"]: item for item in ingest_metric_data(RESULT, "sluiceway_dev")}
    assert by_name[REJECTED_RATIO]["Value"] == 0.05
    assert by_name["ReconciliationMismatches"]["Value"] == 0.0
    failed = dataclasses.replace(RESULT, status="failed")
    assert ingest_metric_data(failed, "n")[1]["Value"] == 1.0
    assert ingest_metric_data(dataclasses.replace(RESULT, status="skipped"), "n") == []


def test_published_metrics_carry_the_dimension_the_alarms_watch(cloudwatch: Any) -> None:
    settings = load_settings(arguments={"namespace": "sluiceway_dev"})
    assert publish_ingest_metrics(cloudwatch, settings, RESULT) == 2
    now = datetime.now(UTC)
    statistics = cloudwatch.get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=REJECTED_RATIO,
        Dimensions=[{"Name": "Namespace", "Value": "sluiceway_dev"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=300,
        Statistics=["Maximum"],
    )
    assert [point["Maximum"] for point in statistics["Datapoints"]] == [0.05]
