"""Processing job: accepted records of an ingest -> processed_transactions / processing_failures.

Runs as an AWS Glue 5 script, on EMR Serverless, on AWS Batch, or locally:
`sluiceway submit process_records -- --source landing.csv`. Its arguments are
`sluiceway process`'s (sluiceway.job_arguments). Exit 0 when every processed ingest
reconciles (accepted = processed + failed), 2 on bad arguments, 3 otherwise, 4 when another
run holds the namespace's writer lease, 5 when an endpoint outage left records pending (retry
the run later; nothing was dead-lettered).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sluiceway.job_arguments import ProcessArgs
from sluiceway.orchestration.metrics import publish_process_metrics, publish_safely
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.pipeline import process, run_step, start_spark
from sluiceway.processing import ProcessResult, RecordsLeftPending

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def process_records(argv: Sequence[str]) -> int:
    """Parse Glue-style arguments, build the session, process; print the run summary."""
    args = ProcessArgs.parse(argv, os.environ)
    spark = start_spark("process", args.settings)
    result = run(spark, args)
    publish_safely(
        args.settings,
        lambda client: publish_process_metrics(
            client, args.settings, result.metrics.records_failed
        ),
    )
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
        return process(spark, args)
    except RecordsLeftPending as error:
        print(f"process_records: error: {error}", file=sys.stderr)
        return error.result


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(
        "process_records", lambda: process_records(sys.argv[1:] if argv is None else argv)
    )


if __name__ == "__main__":
    # The state machine reads the outcome to tell data errors from infrastructure failures.
    raise SystemExit(record_outcome(main(), sys.argv[1:]))
