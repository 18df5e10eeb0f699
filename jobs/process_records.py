"""Processing job: accepted records of an ingest -> processed_transactions / processing_failures.

Runs as an AWS Glue 5 script, on EMR Serverless, on AWS Batch, or locally:
`sluiceway submit process_records -- --source landing.csv`. Exit 0 when every processed
ingest reconciles (accepted = processed + failed), 2 on bad arguments, 3 otherwise, 5 when
an endpoint outage left records pending (retry the run later; nothing was dead-lettered).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging, get_logger
from sluiceway.orchestration.metrics import publish_process_metrics
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.processing import ProcessResult, process_records
from sluiceway.processing.arguments import ProcessArgs
from sluiceway.processing.engine import RecordsLeftPending
from sluiceway.settings import Settings
from sluiceway.spark import build_session
from sluiceway.warehouse import check_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def publish_metrics_safely(settings: Settings, result: ProcessResult) -> None:
    """The dead-letter alarm's metric; a CloudWatch hiccup must not fail a finished run."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("cloudwatch", region_name=settings.aws_region)
        publish_process_metrics(client, settings, result.metrics.records_failed)
    except (BotoCoreError, ClientError) as error:
        get_logger("process").warning("could not publish process metrics: %s", error)


def main(argv: list[str] | None = None) -> int:
    """Parse Glue-style arguments, build the session, process; print the run summary."""
    try:
        args = ProcessArgs.parse(sys.argv[1:] if argv is None else argv, os.environ)
        configure_logging("process", args.settings.log_level)
        check_warehouse(args.settings)
        spark = build_session(args.settings, app_name="sluiceway-process")
        result = run(spark, args)
    except SluicewayError as error:
        print(f"process_records: error: {error}", file=sys.stderr)
        return error.exit_code
    if args.settings.profile != "local":
        publish_metrics_safely(args.settings, result)
    summary = {
        "handler": result.handler,
        "pending": result.pending,
        "left_pending": result.left_pending,
        **result.metrics.summary(),
        "reconciliation": [item.__dict__ for item in result.reconciliation],
        "reconciled": result.reconciled,
    }
    print(json.dumps(summary), flush=True)
    return result.exit_code


def run(spark: SparkSession, args: ProcessArgs) -> ProcessResult:
    """The run's result, also after an outage: its dead letters are counted all the same."""
    try:
        return process_records(
            spark, args.settings, args.options, ingest_id=args.ingest_id, source=args.source
        )
    except RecordsLeftPending as error:
        print(f"process_records: error: {error}", file=sys.stderr)
        return error.result


if __name__ == "__main__":
    # The state machine reads the outcome to tell data errors from infrastructure failures.
    raise SystemExit(record_outcome(main(), sys.argv[1:]))
