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


def _register_none(commands: argparse._SubParsersAction) -> None:
    return None


# Each entry adds one sub-command to the parser (see the register_* functions above).
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_register_none,)


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
