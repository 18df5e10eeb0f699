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
from datetime import UTC, datetime

from sluiceway.job_arguments import IngestArgs
from sluiceway.orchestration.metrics import (
    publish_file_completed,
    publish_ingest_metrics,
    publish_safely,
)
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.pipeline import ingest, run_step, start_spark_reading


def ingest_landing(argv: Sequence[str]) -> int:
    """Parse Glue-style arguments, build the session, ingest; the exit code says how it went."""
    args = IngestArgs.parse(argv, os.environ)
    spark, scanner = start_spark_reading("ingest", args)
    result = ingest(spark, args, scanner=scanner)
    completed_at = datetime.now(UTC)
    publish_safely(
        args.settings,
        lambda client: publish_ingest_metrics(client, args.settings, result)
        + publish_file_completed(client, args.settings, result, completed_at),
    )
    print(f"ingest {result.ingest_id}: {result.status} — {result.message}")
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(
        "ingest_landing", lambda: ingest_landing(sys.argv[1:] if argv is None else argv)
    )


if __name__ == "__main__":
    # The state machine reads the outcome to tell data errors from infrastructure failures.
    raise SystemExit(record_outcome(main(), sys.argv[1:]))
