"""The late-file check on AWS: a Lambda that EventBridge Scheduler runs every few minutes.

Why: when a feed's file never arrives nothing runs and nothing fails, so no other alarm can
fire. Each run decides ok / waiting / late for one feed with `arrival.arrival_status` (the
decision `sluiceway status` makes locally) and publishes `FeedLate` = 1 or 0 for it; the
alarm `LateFileAlarm` in infra/cloudformation/pipeline.yaml notifies the failure topic when
it turns 1 and again when the file arrives and it turns 0.

Where the last completion comes from: the `FilesCompleted` metric the ingest job puts for
each landing file it completed (`metrics.publish_file_completed`). One GetMetricData call
answers it for a cent per thousand checks, with no Athena query, no warehouse access and no
VPC. It is read in hourly sums: windows start on whole hours, so hourly is exact for the
decision (the age it logs is to the hour), and CloudWatch keeps hourly data for 455 days, so
a feed silent for months is still told from one that never had a file.

The handler imports nothing beyond the standard library and boto3 (the Lambda runtime's):
the function's code is the sluiceway wheel itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sluiceway.arrival import arrival_status, as_utc, feed_arrival
from sluiceway.orchestration.metrics import (
    FILES_COMPLETED,
    METRIC_NAMESPACE,
    MetricsClient,
    feed_late_metric_data,
)


class CloudWatchClient(MetricsClient, Protocol):
    """The two calls of boto3's CloudWatch client the check makes."""

    def get_metric_data(self, **kwargs: Any) -> Any: ...


# How long CloudWatch keeps hourly data points: the furthest back a completion can be found.
LOOKBACK = timedelta(days=455)
HOURLY = 3600


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point. The schedule's input names the feed, the namespace its ingests
    publish under (the stack's Glue database) and `now`, the schedule's own time
    (`<aws.scheduler.scheduled-time>`), so a retried invocation decides as the first did."""
    import boto3

    now = as_utc(datetime.fromisoformat(event["now"])) if event.get("now") else datetime.now(UTC)
    result = check_feed(boto3.client("cloudwatch"), event["feed"], event.get("namespace"), now)
    print(json.dumps(result))  # the function's log line in CloudWatch Logs
    return result


def check_feed(
    client: CloudWatchClient, feed: str, namespace: str | None, now: datetime
) -> dict[str, Any]:
    """Decide the feed's state at `now` from `FilesCompleted`, and publish `FeedLate`."""
    feed_namespace, arrival = feed_arrival(feed)
    namespace = namespace or feed_namespace
    last = last_completion(client, namespace, now)
    status = arrival_status(arrival, last, now)
    client.put_metric_data(
        Namespace=METRIC_NAMESPACE, MetricData=feed_late_metric_data(feed, status.is_late, now)
    )
    return {
        "feed": feed,
        "namespace": namespace,
        "state": status.state,
        "now": now.isoformat(),
        "last_completed_hour": last.isoformat() if last is not None else None,
        "due": status.due.isoformat(),
        "late_since": status.late_since.isoformat() if status.late_since else None,
    }


def last_completion(client: CloudWatchClient, namespace: str, now: datetime) -> datetime | None:
    """The start of the latest hour in which a file of `namespace` completed, up to `now`."""
    start = (now - LOOKBACK).replace(minute=0, second=0, microsecond=0)
    query = {
        "Id": "completed",
        "MetricStat": {
            "Metric": {
                "Namespace": METRIC_NAMESPACE,
                "MetricName": FILES_COMPLETED,
                "Dimensions": [{"Name": "Namespace", "Value": namespace}],
            },
            "Period": HOURLY,
            "Stat": "Sum",
        },
    }
    arguments: dict[str, Any] = {
        "MetricDataQueries": [query],
        "StartTime": start,
        "EndTime": now + timedelta(seconds=1),  # EndTime is exclusive: a file completed now
        "ScanBy": "TimestampDescending",
    }
    while True:
        answer = client.get_metric_data(**arguments)
        hours = [
            as_utc(stamp)
            for result in answer["MetricDataResults"]
            for stamp, value in zip(result["Timestamps"], result["Values"], strict=True)
            if value > 0
        ]
        if hours:
            return max(hours)
        if not answer.get("NextToken"):
            return None
        arguments["NextToken"] = answer["NextToken"]
