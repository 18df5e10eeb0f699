"""Maintenance job: compact, rewrite manifests, expire snapshots, remove orphans.

Runs as the scheduled AWS Glue job of infra/cloudformation/pipeline.yaml, or locally:
`sluiceway submit maintain_tables -- --warehouse ./warehouse`. Its arguments are
`sluiceway maintain`'s (sluiceway.job_arguments): the settings options, `--table`,
`--retention-days`, `--retain-last` and `--orphan-age-days`. Exit 0 when every table was
maintained, 4 when another run holds the namespace's writer lease (nothing is changed), 2 on
bad arguments or an unusable warehouse.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from sluiceway.errors import ExitCode
from sluiceway.job_arguments import MaintainArgs
from sluiceway.pipeline import maintain, run_step, start_spark


def maintain_tables(argv: Sequence[str]) -> int:
    """Parse Glue-style arguments (extra Glue ones ignored), maintain, print one JSON line."""
    args = MaintainArgs.parse(argv, os.environ)
    spark = start_spark("maintain", args.settings)
    results = maintain(spark, args)
    print(json.dumps([result.__dict__ for result in results]), flush=True)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_step(
        "maintain_tables", lambda: maintain_tables(sys.argv[1:] if argv is None else argv)
    )


if __name__ == "__main__":
    raise SystemExit(main())
