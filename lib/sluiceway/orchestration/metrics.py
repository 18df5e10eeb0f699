"""The CloudWatch metrics behind the pipeline stack's alarms, built from an ingest result.

The alarms `reject-rate` and `reconciliation-mismatch` in infra/cloudformation/pipeline.yaml
watch these names in the `Sluiceway` namespace with one dimension, `Namespace` = the Iceberg
namespace (the Glue database). The state machine itself publishes `FallbackUsed` the same way.
The job roles may put metrics into this CloudWatch namespace only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sluiceway.ingest.ledger import FAILED
from sluiceway.ingest.run import SKIPPED

if TYPE_CHECKING:
    from sluiceway.ingest import IngestResult
    from sluiceway.settings import Settings

METRIC_NAMESPACE = "Sluiceway"
REJECTED_RATIO = "RejectedRatio"
RECONCILIATION_MISMATCHES = "ReconciliationMismatches"
FALLBACK_USED = "FallbackUsed"


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


def publish_ingest_metrics(client: MetricsClient, settings: Settings, result: IngestResult) -> int:
    """Put the ingest's metrics (call it on the glue / emr-serverless / batch profiles)."""
    data = ingest_metric_data(result, settings.namespace)
    if data:
        client.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=data)
    return len(data)
