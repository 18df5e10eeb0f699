"""Job arguments as Glue, EMR Serverless and spark-submit pass them: `--name value`.

Glue's getResolvedOptions makes every option required and has no defaults; argparse with
`parse_known_args` reads the same arguments everywhere, gives defaults and typed errors, and
ignores what Glue adds on its own (--JOB_NAME, --job-bookmark-option, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sluiceway.settings import PROFILES, Settings, load_settings


def add_job_settings_options(parser: argparse.ArgumentParser) -> None:
    """The options every job shares; they become Settings via `job_settings`."""
    parser.add_argument("--profile", choices=PROFILES, help="where the job runs (default local)")
    parser.add_argument("--warehouse", help="Iceberg warehouse: local folder or s3:// URI")
    parser.add_argument("--namespace", help="Iceberg namespace / Glue database")
    parser.add_argument("--spark-master", help="Spark master, e.g. local[2] (local/batch)")
    parser.add_argument("--staging-dir", help="where a .gz landing file is unpacked")
    parser.add_argument("--log-level", help="INFO or DEBUG")
    parser.add_argument(
        "--lease-table", help="DynamoDB table of the writer lease (s3:// warehouses; Glue)"
    )


def job_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Settings from the shared job options, over the SLUICEWAY_* environment."""
    return load_settings(
        environ=environ,
        arguments={
            "profile": args.profile,
            "warehouse": args.warehouse,
            "namespace": args.namespace,
            "spark_master": args.spark_master,
            "staging_dir": args.staging_dir,
            "log_level": args.log_level,
            "lease_table": args.lease_table,
        },
    )


@dataclass(frozen=True)
class IngestArgs:
    """Arguments of jobs/ingest_landing.py."""

    source: str
    manifest: str | None
    source_version: str | None
    settings: Settings

    @classmethod
    def parse(cls, argv: Sequence[str] | None, environ: Mapping[str, str]) -> IngestArgs:
        parser = argparse.ArgumentParser(
            prog="ingest_landing.py", description="Ingest one landing file into Iceberg."
        )
        parser.add_argument("--source", required=True, help="landing file path or s3:// URI")
        parser.add_argument("--manifest", help="manifest to check (default SOURCE.manifest.json)")
        parser.add_argument("--source-version", help="S3 version id of the landing object")
        add_job_settings_options(parser)
        args, _ignored = parser.parse_known_args(argv)
        # Step Functions passes "" when the landing bucket gave no version id.
        version = args.source_version or None
        return cls(args.source, args.manifest, version, job_settings(args, environ))
