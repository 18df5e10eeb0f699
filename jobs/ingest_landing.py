"""Ingest job: one landing file -> transactions / rejected_records / ingest_ledger.

Runs as an AWS Glue 5 script (--datalake-formats iceberg), on EMR Serverless, on AWS Batch,
or locally: `spark-submit jobs/ingest_landing.py --source landing.csv`.
"""

from __future__ import annotations

import os
import sys

from sluiceway.errors import SluicewayError
from sluiceway.ingest import ingest_file
from sluiceway.job_arguments import IngestArgs
from sluiceway.logs import configure_logging
from sluiceway.spark import build_session


def main(argv: list[str] | None = None) -> int:
    """Parse Glue-style arguments, build the session, ingest; the exit code says how it went."""
    try:
        args = IngestArgs.parse(sys.argv[1:] if argv is None else argv, os.environ)
        configure_logging("ingest", args.settings.log_level)
        spark = build_session(args.settings, app_name="sluiceway-ingest")
        result = ingest_file(spark, args.settings, args.source, args.manifest, args.source_version)
    except SluicewayError as error:
        print(f"ingest_landing: error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"ingest {result.ingest_id}: {result.status} — {result.message}")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
