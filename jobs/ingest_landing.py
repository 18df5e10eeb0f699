"""Ingest job: one landing file -> transactions / rejected_records / ingest_ledger.

Runs as an AWS Glue 5 script (--datalake-formats iceberg), on EMR Serverless, on AWS Batch,
or locally: `sluiceway submit ingest_landing -- --source landing.csv` (spark-submit with the
Iceberg runtime jar; plain spark-submit needs `--jars`, and says which).
"""

from __future__ import annotations

import os
import sys

from sluiceway.errors import SluicewayError
from sluiceway.ingest import IngestResult, ingest_file
from sluiceway.job_arguments import IngestArgs
from sluiceway.logs import configure_logging, get_logger
from sluiceway.orchestration.metrics import publish_ingest_metrics
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.settings import Settings
from sluiceway.spark import build_session
from sluiceway.warehouse import check_warehouse


def publish_metrics_safely(settings: Settings, result: IngestResult) -> None:
    """The alarms' metrics; a CloudWatch hiccup must not fail an ingest that succeeded."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("cloudwatch", region_name=settings.aws_region)
        publish_ingest_metrics(client, settings, result)
    except (BotoCoreError, ClientError) as error:
        get_logger("ingest").warning("could not publish ingest metrics: %s", error)


def main(argv: list[str] | None = None) -> int:
    """Parse Glue-style arguments, build the session, ingest; the exit code says how it went."""
    try:
        args = IngestArgs.parse(sys.argv[1:] if argv is None else argv, os.environ)
        configure_logging("ingest", args.settings.log_level)
        check_warehouse(args.settings)
        spark = build_session(args.settings, app_name="sluiceway-ingest")
        result = ingest_file(spark, args.settings, args.source, args.manifest, args.source_version)
        if args.settings.profile != "local":
            publish_metrics_safely(args.settings, result)
    except SluicewayError as error:
        print(f"ingest_landing: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"ingest {result.ingest_id}: {result.status} — {result.message}")
    return result.exit_code


if __name__ == "__main__":
    # The state machine reads the outcome to tell data errors from infrastructure failures.
    raise SystemExit(record_outcome(main(), sys.argv[1:]))
