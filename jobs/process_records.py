"""Processing job: accepted records of an ingest -> processed_transactions / processing_failures.

Runs as an AWS Glue 5 script, on EMR Serverless, on AWS Batch, or locally:
`spark-submit jobs/process_records.py --source landing.csv`. Exit 0 when every processed
ingest reconciles (accepted = processed + failed), 2 on bad arguments, 3 otherwise.
"""

from __future__ import annotations

import json
import os
import sys

from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging
from sluiceway.processing import process_records
from sluiceway.processing.arguments import ProcessArgs
from sluiceway.spark import build_session


def main(argv: list[str] | None = None) -> int:
    """Parse Glue-style arguments, build the session, process; print the run summary."""
    try:
        args = ProcessArgs.parse(sys.argv[1:] if argv is None else argv, os.environ)
        configure_logging("process", args.settings.log_level)
        spark = build_session(args.settings, app_name="sluiceway-process")
        result = process_records(
            spark, args.settings, args.options, ingest_id=args.ingest_id, source=args.source
        )
    except SluicewayError as error:
        print(f"process_records: error: {error}", file=sys.stderr)
        return error.exit_code
    summary = {
        "handler": result.handler,
        "pending": result.pending,
        **result.metrics.summary(),
        "reconciliation": [item.__dict__ for item in result.reconciliation],
        "reconciled": result.reconciled,
    }
    print(json.dumps(summary), flush=True)
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
