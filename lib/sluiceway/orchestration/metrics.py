"""The CloudWatch metrics behind the pipeline stack's alarms, from an ingest or a process run.

The alarms `reject-rate` and `reconciliation-mismatch` in infra/cloudformation/pipeline.yaml
watch these names in the `Sluiceway` namespace with one dimension, `Namespace` = the Iceberg
namespace (the Glue database); the dead-letter alarm watches `DeadLetters` from the process
job. The state machine itself publishes `FallbackUsed` the same way. The ingest job also
counts each landing file it completed (`FilesCompleted`): the late-file check
(`orchestration/late_file.py`) reads it to tell whether a feed's file came, and publishes
`FeedLate` (dimension `Feed`) for the late-file alarm.
The job roles may put metrics into this CloudWatch namespace only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sluiceway.logs import get_logger
from sluiceway.statuses import COMPLETED, FAILED, SKIPPED

if TYPE_CHECKING:
    from sluiceway.ingest import IngestResult
    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
METRIC_NAMESPACE = "Sluiceway"
REJECTED_RATIO = "RejectedRatio"
RECONCILIATION_MISMATCHES = "ReconciliationMismatches"
FALLBACK_USED = "FallbackUsed"
# Records the process job dead-lettered (permanent, record-specific errors) in one run.
DEAD_LETTERS = "DeadLetters"
# A stream's micro-batch: its seconds from records in hand to published, and the records the
# broker held beyond it (infra/cloudformation/streaming.yaml alarms on both).
STREAM_BATCH_SECONDS = "StreamBatchSeconds"
STREAM_LAG = "StreamLag"
# One per landing file whose ingest completed, stamped when it did; and 1 / 0 per feed and
# check: its file is late / not late (infra/cloudformation/pipeline.yaml, LateFileAlarm).
FILES_COMPLETED = "FilesCompleted"
FEED_LATE = "FeedLate"


class MetricsClient(Protocol):
    """The one call of boto3's CloudWatch client that is used here."""

    def put_metric_data(self, **kwargs: Any) -> Any: ...


def ingest_metric_data(result: IngestResult, namespace: str) -> list[dict[str, Any]]:
    """MetricData for one ingest; a skipped (already ingested) file publishes nothing."""
    if result.status == SKIPPED:
        return []
    dimensions = [{"Name": "Namespace", "Value": namespace}]
    ratio = result.rejected / result.lines_read if result.lines_read else 0.0
    return [
        {"MetricName": REJECTED_RATIO, "Dimensions": dimensions, "Value": ratio, "Unit": "None"},
        {
            "MetricName": RECONCILIATION_MISMATCHES,
            "Dimensions": dimensions,
            "Value": 1.0 if result.status == FAILED else 0.0,
            "Unit": "Count",
        },
    ]


def process_metric_data(dead_letters: int, namespace: str) -> list[dict[str, Any]]:
    """MetricData for one process run: its dead letters (0 too, so the alarm sees the run)."""
    dimensions = [{"Name": "Namespace", "Value": namespace}]
    return [
        {
            "MetricName": DEAD_LETTERS,
            "Dimensions": dimensions,
            "Value": float(dead_letters),
            "Unit": "Count",
        }
    ]


def stream_metric_data(seconds: float, lag: int | None, namespace: str) -> list[dict[str, Any]]:
    """MetricData for one micro-batch of `sluiceway stream`; no lag point when the broker could
    not say (a missing point, not a lag of 0)."""
    dimensions = [{"Name": "Namespace", "Value": namespace}]
    data: list[dict[str, Any]] = [
        {
            "MetricName": STREAM_BATCH_SECONDS,
            "Dimensions": dimensions,
            "Value": seconds,
            "Unit": "Seconds",
        }
    ]
    if lag is not None:
        data.append(
            {
                "MetricName": STREAM_LAG,
                "Dimensions": dimensions,
                "Value": float(lag),
                "Unit": "Count",
            }
        )
    return data


def publish_stream_metrics(
    client: MetricsClient, settings: Settings, seconds: float, lag: int | None
) -> int:
    """Put a micro-batch's metrics (the glue / emr-serverless / batch profiles)."""
    data = stream_metric_data(seconds, lag, settings.namespace)
    client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)
    return len(data)


def publish_process_metrics(client: MetricsClient, settings: Settings, dead_letters: int) -> int:
    """Put the process run's metrics (call it on the glue / emr-serverless / batch profiles)."""
    data = process_metric_data(dead_letters, settings.namespace)
    client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)
    return len(data)


def publish_ingest_metrics(client: MetricsClient, settings: Settings, result: IngestResult) -> int:
    """Put the ingest's metrics (call it on the glue / emr-serverless / batch profiles)."""
    data = ingest_metric_data(result, settings.namespace)
    if data:
        client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)
    return len(data)


def file_completed_metric_data(
    result: IngestResult, namespace: str, completed_at: datetime
) -> list[dict[str, Any]]:
    """MetricData for one landing file: 1 when its ingest completed, nothing otherwise (a
    skipped file was already there, a failed one did not arrive as far as readers know)."""
    if result.status != COMPLETED:
        return []
    return [
        {
            "MetricName": FILES_COMPLETED,
            "Dimensions": [{"Name": "Namespace", "Value": namespace}],
            "Timestamp": completed_at,
            "Value": 1.0,
            "Unit": "Count",
        }
    ]


def publish_file_completed(
    client: MetricsClient, settings: Settings, result: IngestResult, completed_at: datetime
) -> int:
    """Put `FilesCompleted` for a landing file the ingest job completed (not for stream batches:
    the late-file alarm is about files)."""
    data = file_completed_metric_data(result, settings.namespace, completed_at)
    if data:
        client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)
    return len(data)


def feed_late_metric_data(feed: str, late: bool, checked_at: datetime) -> list[dict[str, Any]]:
    """MetricData of one late-file check: 1 while the feed's file is late, else 0 (every
    check publishes, so the alarm can tell "not late" from "nobody checked")."""
    return [
        {
            "MetricName": FEED_LATE,
            "Dimensions": [{"Name": "Feed", "Value": feed}],
            "Timestamp": checked_at,
            "Value": 1.0 if late else 0.0,
            "Unit": "Count",
        }
    ]


def publish_safely(settings: Settings, publish: Callable[[MetricsClient], int]) -> None:
    """Publish a job's metrics on the AWS profiles (`publish` gets the CloudWatch client).

    A CloudWatch hiccup must not fail a job whose data work succeeded: it is logged.
    """
    if settings.profile == "local":
        return
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        publish(boto3.client("cloudwatch", region_name=settings.aws_region))
    except (BotoCoreError, ClientError) as error:
        LOGGER.warning("could not publish the job's metrics: %s", error)
