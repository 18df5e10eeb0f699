"""The ingest job's `FilesCompleted` on the production stack, read by the late-file check.

The job runs as a real subprocess with the `local-aws` profile and finds CloudWatch (moto) only
through the standard AWS variables, as a Glue job finds CloudWatch; the late-file check then
reads the metric over the same wire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.aws_stack import StackNamespace, finished, upload_landing
from sluiceway.errors import ExitCode
from sluiceway.generate import generate_landing_file
from sluiceway.orchestration.late_file import check_feed
from sluiceway.orchestration.metrics import FILES_COMPLETED, METRIC_NAMESPACE

pytestmark = [pytest.mark.aws_stack, pytest.mark.integration]


def test_a_completed_file_is_counted_once_and_the_late_file_check_sees_it(
    stack_namespace: StackNamespace, tmp_path: Path
) -> None:
    path = tmp_path / "transactions_2026-11-25.csv"
    generate_landing_file(path, 50, seed=3)
    source, _version = upload_landing(
        stack_namespace.stack, path, f"{stack_namespace.name}/{path.name}"
    )
    started = datetime.now(UTC).replace(second=0, microsecond=0)
    outputs = []
    for _run in range(2):  # the second run finds the file completed: skipped, not counted
        code, output, errors = finished(stack_namespace.start_ingest(source))
        assert code == ExitCode.OK, errors[-3000:]
        outputs.append(output)
    assert "skipped" in outputs[1], outputs[1]
    ended = datetime.now(UTC)

    cloudwatch = stack_namespace.stack.client("cloudwatch")
    answer = cloudwatch.get_metric_statistics(
        Namespace=METRIC_NAMESPACE,
        MetricName=FILES_COMPLETED,
        Dimensions=[{"Name": "Namespace", "Value": stack_namespace.name}],
        StartTime=started - timedelta(minutes=1),
        EndTime=ended + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )
    points = answer["Datapoints"]
    assert sum(point["Sum"] for point in points) == 1.0, points
    [counted] = [point["Timestamp"] for point in points if point["Sum"]]
    assert started <= counted <= ended

    result = check_feed(cloudwatch, "transactions", stack_namespace.name, ended)
    hour = counted.replace(minute=0, second=0, microsecond=0)
    assert result["last_completed_hour"] == hour.isoformat()
