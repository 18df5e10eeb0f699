"""Arguments of jobs/process_records.py, read the same way on Glue, EMR, Batch and spark-submit.

The names match the CloudFormation DefaultArguments, the state machine and the Batch command
exactly; `parse_known_args` ignores what Glue adds on its own (--JOB_NAME, ...).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sluiceway.errors import ConfigurationError
from sluiceway.job_arguments import add_job_settings_options, job_settings
from sluiceway.processing.engine import ProcessOptions
from sluiceway.settings import Settings


def parse_handler_options(pairs: Sequence[str] | None) -> dict[str, str]:
    """`key=value` pairs (repeatable --handler-option) into a dict."""
    options: dict[str, str] = {}
    for pair in pairs or ():
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigurationError(
                f"--handler-option {pair!r} is not key=value, e.g. endpoint=https://ledger/api"
            )
        options[key.strip()] = value.strip()
    return options


def add_process_options(parser: argparse.ArgumentParser) -> None:
    """The options `sluiceway process`, `sluiceway run` and the job share."""
    parser.add_argument(
        "--handler",
        # Not `handler`: the CLI keeps its sub-command function under that name.
        dest="handler_name",
        default="financial",
        help="financial (default), http, noop, module:attribute or lambda:module:function",
    )
    parser.add_argument(
        "--handler-option",
        action="append",
        metavar="KEY=VALUE",
        help="handler setting, repeatable, e.g. endpoint=https://ledger/api",
    )
    parser.add_argument("--batch-size", type=int, default=500, help="records per handler call")
    parser.add_argument("--max-attempts", type=int, default=4, help="attempts per batch")
    parser.add_argument(
        "--commit-every",
        type=int,
        default=1_000_000,
        help="records per committed wave; a kill loses at most one wave",
    )
    parser.add_argument("--partitions", type=int, default=0, help="0 = from the cores")


def process_options(args: argparse.Namespace) -> ProcessOptions:
    """ProcessOptions from parsed arguments, with a clear error for nonsense values."""
    if args.batch_size < 1 or args.max_attempts < 1 or args.commit_every < 1:
        raise ConfigurationError(
            "--batch-size, --max-attempts and --commit-every must be at least 1; got "
            f"{args.batch_size}, {args.max_attempts}, {args.commit_every}"
        )
    return ProcessOptions(
        handler=args.handler_name,
        handler_options=parse_handler_options(args.handler_option),
        batch_size=args.batch_size,
        max_attempts=args.max_attempts,
        commit_every=args.commit_every,
        partitions=args.partitions,
    )


@dataclass(frozen=True)
class ProcessArgs:
    """What jobs/process_records.py was asked to do."""

    source: str | None
    ingest_id: str | None
    options: ProcessOptions
    settings: Settings

    @classmethod
    def parse(cls, argv: Sequence[str] | None, environ: Mapping[str, str]) -> ProcessArgs:
        parser = argparse.ArgumentParser(
            prog="process_records.py",
            description="Process accepted records: of one ingest (--source or --ingest-id) "
            "or, with neither, every accepted record without a result.",
        )
        parser.add_argument("--source", help="the landing file URI given to the ingest job")
        parser.add_argument("--ingest-id", help="the ingest id from ingest_ledger")
        add_process_options(parser)
        add_job_settings_options(parser)
        args, _ignored = parser.parse_known_args(argv)
        settings = job_settings(args, environ)
        return cls(args.source or None, args.ingest_id or None, process_options(args), settings)
