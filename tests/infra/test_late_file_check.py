"""The late-file Lambda's handler over the wire, with a frozen clock.

CloudWatch has no local equivalent, so moto's server stands in for it, on 127.0.0.1: the
handler builds its own boto3 client, which finds the server only through
`AWS_ENDPOINT_URL_CLOUDWATCH`, as the function finds CloudWatch on AWS. `FilesCompleted` is put
the way the ingest job puts it; `FeedLate` is read back with exactly the namespace, name and
dimension the alarm in the rendered pipeline template watches. The clock is the schedule's
time in the event (`now`), never the wall clock.
"""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode_str
from moto.server import ThreadedMotoServer

from sluiceway.ingest import IngestResult
from sluiceway.orchestration import PIPELINE_DEFINITION
from sluiceway.orchestration.late_file import handler
from sluiceway.orchestration.metrics import file_completed_metric_data, publish_file_completed
from sluiceway.orchestration.template import render_template
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

REGION = "eu-west-1"
DATABASE = "sluiceway_dev"
COMPLETED = IngestResult("ing_0123456789abcdef0123", "s3://landing/incoming/a.csv", "completed")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's server on 127.0.0.1; the environment a Lambda has, with the endpoint added."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends live in the process, across servers: each test starts from none.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    server.stop()


@pytest.fixture(scope="module")
def alarm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The late-file alarm's properties, from the rendered pipeline template."""
    output = tmp_path_factory.mktemp("rendered") / "pipeline.yaml"
    render_template(PIPELINE_DEFINITION.parents[1] / "cloudformation" / "pipeline.yaml", output)
    template, errors = decode_str(output.read_text())
    assert not errors, errors
    properties: dict[str, Any] = template["Resources"]["LateFileAlarm"]["Properties"]
    (dimension,) = properties["Dimensions"]
    assert dimension["Value"] == {"Ref": "LateFileFeed"}
    properties["Feed"] = template["Parameters"]["LateFileFeed"]["Default"]
    return properties


def feed_late(client: Any, alarm: dict[str, Any]) -> list[tuple[datetime, float]]:
    """Every FeedLate data point the alarm sees, oldest first."""
    answer = client.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=[{"Name": alarm["Dimensions"][0]["Name"], "Value": alarm["Feed"]}],
        StartTime=at("2026-01-01 00:00"),
        EndTime=at("2027-01-01 00:00"),
        Period=60,
        Statistics=[alarm["Statistic"]],
    )
    points = [(point["Timestamp"], point[alarm["Statistic"]]) for point in answer["Datapoints"]]
    return sorted(points)


def check(now: str) -> dict[str, Any]:
    event = {"feed": "transactions", "namespace": DATABASE, "now": f"{now}Z".replace(" ", "T")}
    return handler(event, None)


def completed(client: Any, when: str, namespace: str = DATABASE) -> None:
    settings = load_settings(arguments={"namespace": namespace})
    assert publish_file_completed(client, settings, COMPLETED, at(when)) == 1


def test_no_file_by_the_due_time_publishes_1_and_its_arrival_publishes_0(
    cloudwatch: Any, alarm: dict[str, Any]
) -> None:
    completed(cloudwatch, "2026-03-01 04:10")
    assert check("2026-03-02 05:55")["state"] == "waiting"
    late = check("2026-03-02 06:05")
    assert (late["state"], late["late_since"]) == ("late", "2026-03-02T06:00:00+00:00")
    assert late["last_completed_hour"] == "2026-03-01T04:00:00+00:00"
    assert feed_late(cloudwatch, alarm) == [
        (at("2026-03-02 05:55"), 0.0),
        (at("2026-03-02 06:05"), 1.0),
    ]

    # Another namespace's file, or an ingest that did not complete, is no arrival.
    completed(cloudwatch, "2026-03-02 06:07", namespace="other_feed")
    cloudwatch.put_metric_data(
        Namespace=alarm["Namespace"],
        MetricData=[
            {
                "MetricName": "RejectedRatio",
                "Dimensions": [{"Name": "Namespace", "Value": DATABASE}],
                "Timestamp": at("2026-03-02 06:08"),
                "Value": 0.5,
            }
        ],
    )
    assert check("2026-03-02 06:10")["state"] == "late"

    completed(cloudwatch, "2026-03-02 06:40")
    assert check("2026-03-02 06:45")["state"] == "ok"
    assert [value for _time, value in feed_late(cloudwatch, alarm)] == [0.0, 1.0, 1.0, 0.0]


def test_a_feed_silent_for_weeks_is_late_even_before_the_due_time(
    cloudwatch: Any, alarm: dict[str, Any]
) -> None:
    completed(cloudwatch, "2026-01-10 03:00")
    result = check("2026-03-02 05:00")
    assert (result["state"], result["late_since"]) == ("late", "2026-03-01T06:00:00+00:00")
    assert feed_late(cloudwatch, alarm) == [(at("2026-03-02 05:00"), 1.0)]


def test_a_feed_that_never_had_a_file_waits_for_its_first_due_time(
    cloudwatch: Any, alarm: dict[str, Any]
) -> None:
    assert check("2026-03-02 05:59")["state"] == "waiting"
    assert check("2026-03-02 06:00")["state"] == "late"
    assert [value for _time, value in feed_late(cloudwatch, alarm)] == [0.0, 1.0]


def test_without_a_time_in_the_event_the_check_uses_the_clock(cloudwatch: Any) -> None:
    result = handler({"feed": "transactions", "namespace": DATABASE}, None)
    assert abs(datetime.fromisoformat(result["now"]) - datetime.now(UTC)) < timedelta(minutes=1)


def test_the_handler_imports_only_what_the_lambda_runtime_has() -> None:
    """The function's code is the wheel: importing the handler must need no pandas, pyarrow,
    pyspark or duckdb (the runtime has boto3 only)."""
    import subprocess
    import sys

    probe = (
        "import sys; import sluiceway.orchestration.late_file; "
        "heavy = {'pandas', 'pyarrow', 'pyspark', 'duckdb', 'numpy', 'pyiceberg', 'sqlglot'}; "
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_only_a_completed_ingest_counts_as_an_arrival() -> None:
    when = at("2026-03-02 04:00")
    for status in ("skipped", "failed"):
        result = dataclasses.replace(COMPLETED, status=status)
        assert file_completed_metric_data(result, DATABASE, when) == [], status
    [datum] = file_completed_metric_data(COMPLETED, DATABASE, when)
    assert (datum["MetricName"], datum["Value"], datum["Timestamp"]) == (
        "FilesCompleted",
        1.0,
        when,
    )
    assert datum["Dimensions"] == [{"Name": "Namespace", "Value": DATABASE}]
