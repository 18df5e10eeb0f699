"""The `sluiceway` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from sluiceway.errors import SluicewayError
from sluiceway.settings import PROFILES, Settings, load_settings

Handler = Callable[[argparse.Namespace], int]


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with precedence defaults < profile < SLUICEWAY_* environment < options."""
    return load_settings(
        environ=os.environ,
        arguments={
            "profile": getattr(args, "profile", None),
            "warehouse": getattr(args, "warehouse", None),
        },
    )


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """--profile and --warehouse, shared by every command that touches the tables."""
    parser.add_argument(
        "--warehouse",
        help="Iceberg warehouse (local folder or s3:// URI); default ./warehouse "
        "or $SLUICEWAY_WAREHOUSE",
    )
    parser.add_argument("--profile", choices=PROFILES, help="where this runs; default local")


def _contract(args: argparse.Namespace) -> int:
    from sluiceway.contract import contract_markdown

    print(contract_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per task; each sub-command has its own --help."""
    parser = argparse.ArgumentParser(
        prog="sluiceway",
        description="Landing CSV of financial transactions -> validated Iceberg tables -> "
        "per-record processing. Runs locally (Spark + a local Iceberg warehouse) or on AWS.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    contract = commands.add_parser(
        "contract", help="print the landing-file contract and the reason codes"
    )
    contract.set_defaults(handler=_contract)
    for register in COMMANDS:
        register(commands)
    return parser


def _upload(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sluiceway.logs import configure_logging
    from sluiceway.upload import (
        RetryPolicy,
        TransferSettings,
        UploadOptions,
        run_upload,
        s3_client,
    )

    settings = settings_from(args)
    configure_logging("upload", settings.log_level)
    options = UploadOptions(
        watch_dir=Path(args.watch_dir),
        bucket=args.bucket,
        archive_dir=Path(args.archive_dir),
        prefix=args.prefix,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        min_age=args.min_age,
        dry_run=args.dry_run,
        transfer=TransferSettings(
            part_size=args.part_size_mb * 1024 * 1024,
            concurrency=args.concurrency,
            checksum=args.checksum,
            retry=RetryPolicy(attempts=args.attempts, first_delay=args.retry_delay),
        ),
    )
    report = run_upload(s3_client(args.endpoint_url, settings.aws_region), options)
    print(json.dumps(report.summary()))
    return report.exit_code


def register_upload(commands: argparse._SubParsersAction) -> None:
    """`sluiceway upload`: the cron job that moves complete landing files into S3 once."""
    parser = commands.add_parser(
        "upload",
        help="move complete landing files from a folder into S3, exactly once (run from cron)",
        description="Uploads every complete file of --watch-dir to s3://BUCKET/PREFIX/NAME "
        "(never overwriting), then moves it to --archive-dir. Complete means NAME.done exists "
        "or size and mtime were unchanged across runs at least --min-age apart. Exit code 4 "
        "when a file failed or conflicts (it stays in place); see docs/uploader.md.",
    )
    parser.add_argument("--watch-dir", required=True, help="folder the partner uploads to")
    parser.add_argument("--bucket", required=True, help="landing bucket")
    parser.add_argument("--prefix", default="", help="key prefix, e.g. landing/partner-a")
    parser.add_argument(
        "--archive-dir", required=True, help="where uploaded files go (not inside --watch-dir)"
    )
    parser.add_argument("--endpoint-url", help="S3 endpoint for S3-compatible servers; default AWS")
    parser.add_argument(
        "--min-age",
        type=float,
        default=60.0,
        help="seconds a file's size and mtime must stay unchanged; default 60",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would be uploaded; change nothing"
    )
    parser.add_argument(
        "--state-dir",
        help="where observations between runs live; default WATCH_DIR/.sluiceway-upload",
    )
    parser.add_argument("--part-size-mb", type=int, default=64, help="multipart part size")
    parser.add_argument("--concurrency", type=int, default=4, help="parts uploaded in parallel")
    parser.add_argument(
        "--checksum", choices=("CRC32", "SHA256"), default="CRC32", help="per-part checksum"
    )
    parser.add_argument("--attempts", type=int, default=5, help="tries per S3 request")
    parser.add_argument(
        "--retry-delay", type=float, default=2.0, help="first backoff in seconds (doubles)"
    )
    parser.set_defaults(handler=_upload)


def _register_none(commands: argparse._SubParsersAction) -> None:
    return None


# Each entry adds one sub-command to the parser (see the register_* functions above).
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _register_none,
    register_upload,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; SluicewayError becomes a one-line message."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SluicewayError as error:
        print(f"sluiceway {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"sluiceway {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
