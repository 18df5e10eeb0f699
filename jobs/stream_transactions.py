"""Stream job: landing lines from a Kafka topic -> transactions / rejected_records /
ingest_ledger, micro-batch by micro-batch, each batch's accepted records processed after it.

Runs as an AWS Glue 5 streaming job (infra/cloudformation/streaming.yaml), or locally:
`sluiceway submit stream_transactions -- --topic T --bootstrap-servers HOST:PORT`. Its
arguments are `sluiceway stream`'s (sluiceway.job_arguments); Kafka client settings come as
`--kafka-options KEY=VALUE,KEY=VALUE` (Glue cannot repeat an argument).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sluiceway.job_arguments import StreamArgs
from sluiceway.pipeline import run_step, start_spark, stream


def stream_transactions(argv: Sequence[str]) -> int:
    """Parse Glue-style arguments, build the session, stream until stopped."""
    args = StreamArgs.parse(argv, os.environ)
    spark = start_spark("stream", args.settings)
    summary = stream(spark, args)
    print(summary.describe())
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(
        "stream_transactions", lambda: stream_transactions(sys.argv[1:] if argv is None else argv)
    )


if __name__ == "__main__":
    raise SystemExit(main())
