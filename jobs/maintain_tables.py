"""Maintenance job: compact, rewrite manifests, expire snapshots, remove orphans.

Runs as the scheduled AWS Glue job of infra/cloudformation/pipeline.yaml with
`--profile --warehouse --namespace`, or locally: `spark-submit jobs/maintain_tables.py`.
Exit 0 when every table was maintained, 4 when another run holds the namespace's writer lease
(nothing is changed), 2 on bad arguments or an unusable warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sluiceway.errors import SluicewayError
from sluiceway.job_arguments import add_job_settings_options, job_settings
from sluiceway.logs import configure_logging
from sluiceway.maintenance import maintain_tables
from sluiceway.spark import build_session
from sluiceway.warehouse import check_warehouse


def main(argv: list[str] | None = None) -> int:
    """Parse Glue-style arguments (extra Glue ones ignored), maintain, print one JSON line."""
    parser = argparse.ArgumentParser(prog="maintain_tables.py", description=__doc__)
    add_job_settings_options(parser)
    args, _ignored = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = job_settings(args, os.environ)
        configure_logging("maintain", settings.log_level)
        check_warehouse(settings)
        spark = build_session(settings, app_name="sluiceway-maintain")
        results = maintain_tables(spark, settings)
    except SluicewayError as error:
        print(f"maintain_tables: error: {error}", file=sys.stderr)
        return error.exit_code
    print(json.dumps([result.__dict__ for result in results]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
