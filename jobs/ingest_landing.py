"""Ingest job: one landing file -> transactions / rejected_records / ingest_ledger.

Runs as an AWS Glue 5 script (--datalake-formats iceberg), on EMR Serverless, on AWS Batch,
or locally: `sluiceway submit ingest_landing -- --source landing.csv` (spark-submit with the
Iceberg runtime jar; plain spark-submit needs `--jars`, and says which). Its arguments are
`sluiceway ingest`'s (sluiceway.job_arguments), the landing file given as `--source`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sluiceway.ingest import IngestResult
from sluiceway.job_arguments import IngestArgs
from sluiceway.logs import get_logger
from sluiceway.orchestration.metrics import publish_ingest_metrics
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.pipeline import ingest, run_step, start_spark
from sluiceway.settings import Settings

LOGGER = get_logger("jobs.ingest_landing")


def publish_metrics_safely(settings: Settings, result: IngestResult) -> None:
    """The alarms' metrics; a CloudWatch hiccup must not fail an ingest that succeeded."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("cloudwatch", region_name=settings.aws_region)
        publish_ingest_metrics(client, settings, result)
    except (BotoCoreError, ClientError) as error:
        LOGGER.warning("could not publish ingest metrics: %s", error)


def ingest_landing(argv: Sequence[str]) -> int:
    """Parse Glue-style arguments, build the session, ingest; the exit code says how it went."""
    args = IngestArgs.parse(argv, os.environ)
    spark = start_spark("ingest", args.settings)
    result = ingest(spark, args)
    if args.settings.profile != "local":
        publish_metrics_safely(args.settings, result)
    print(f"ingest {result.ingest_id}: {result.status} — {result.message}")
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(
        "ingest_landing", lambda: ingest_landing(sys.argv[1:] if argv is None else argv)
    )


if __name__ == "__main__":
    # The state machine reads the outcome to tell data errors from infrastructure failures.
    raise SystemExit(record_outcome(main(), sys.argv[1:]))
