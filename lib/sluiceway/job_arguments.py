"""The arguments of ingest, process and maintain: one definition for the jobs and the command.

Glue, EMR Serverless, Batch and spark-submit pass `--name value`; `sluiceway ingest`,
`process`, `run` and `maintain` take the same options, added by the same functions below, so
a name, its help and its meaning cannot drift apart. Glue's getResolvedOptions makes every
option required and has no defaults; argparse with `parse_known_args` reads the same arguments
everywhere, gives defaults and typed errors, and ignores what Glue adds on its own
(--JOB_NAME, --job-bookmark-option, ...) and what the state machine reads itself
(--outcome-uri).

Nothing here imports Spark: `sluiceway upload` and `check` build their parsers from this module
on hosts without pyspark, so ProcessOptions and MaintenanceOptions are imported on first use.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Self

from sluiceway.errors import ConfigurationError
from sluiceway.feeds import DEFAULT_FEED
from sluiceway.ingest.file_policy import FilePolicy, feed_policy
from sluiceway.logs import LOG_FORMATS
from sluiceway.settings import PROFILES, Settings, load_settings

if TYPE_CHECKING:
    from sluiceway.maintenance import MaintenanceOptions
    from sluiceway.processing import ProcessOptions
    from sluiceway.stream import StreamOptions


@dataclass(frozen=True)
class SettingOption:
    """A job argument that sets one field of Settings (`--lease-table` -> `lease_table`)."""

    flag: str
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def field(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


# Every command and job that reads the tables takes these.
SETTINGS_OPTIONS = (
    SettingOption("--profile", "where this runs; default local", PROFILES),
    SettingOption(
        "--warehouse",
        "Iceberg warehouse (local folder or s3:// URI); default ./warehouse "
        "or $SLUICEWAY_WAREHOUSE",
    ),
    SettingOption(
        "--namespace",
        "Iceberg namespace (the Glue database on AWS); default sluiceway or $SLUICEWAY_NAMESPACE",
    ),
    SettingOption(
        "--log-level",
        "INFO (default) or DEBUG; DEBUG also brings Spark's own log back to stderr",
    ),
    SettingOption(
        "--log-format",
        "log lines on stderr: json (default for jobs and when stderr is no terminal) or "
        "text (time, level, message; default for `sluiceway` on a terminal); "
        "or $SLUICEWAY_LOG_FORMAT",
        LOG_FORMATS,
    ),
    SettingOption(
        "--log-file",
        "also write every log line as JSON to this file, and Spark's log beside it; stderr "
        "then shows warnings and errors only (default on a terminal: one file per run under "
        "the temp folder, printed at the end)",
    ),
)
# The partner feed (docs/feeds.md): its contract file, and its tables' namespace.
FEED_OPTIONS = (
    SettingOption(
        "--feed",
        "the partner feed whose contract and tables to use (docs/feeds.md); default "
        "transactions or $SLUICEWAY_FEED",
    ),
    SettingOption(
        "--feeds-dir",
        "an operator's folder of feed files (NAME.toml) beside the packaged ones; "
        "default $SLUICEWAY_FEEDS_DIR",
    ),
)
# Every command and job that starts Spark and writes the tables also takes these.
SPARK_OPTIONS = (
    SettingOption(
        "--spark-master",
        "Spark master, e.g. local[4] or spark://host:7077; default local[*] "
        "or $SLUICEWAY_SPARK_MASTER",
    ),
    SettingOption(
        "--staging-dir",
        "where a .gz landing file is unpacked for the executors; default under an s3:// "
        "warehouse, else the temp folder",
    ),
    SettingOption(
        "--lease-table",
        "DynamoDB table of the namespace's writer lease (s3:// warehouses; Glue passes it "
        "this way, other engines as $SLUICEWAY_LEASE_TABLE)",
    ),
)


def add_settings_options(parser: argparse.ArgumentParser, *, spark: bool) -> None:
    """The options that become Settings (via `settings_from`); with `spark`, the Spark ones."""
    for option in (*SETTINGS_OPTIONS, *(SPARK_OPTIONS if spark else ())):
        parser.add_argument(option.flag, choices=option.choices, help=option.help)
    add_feed_options(parser)


def add_feed_options(parser: argparse.ArgumentParser) -> None:
    """`--feed` and `--feeds-dir`, for the commands that take no other setting too."""
    for option in FEED_OPTIONS:
        parser.add_argument(option.flag, help=option.help)


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Settings with precedence defaults < profile < SLUICEWAY_* environment < options."""
    return load_settings(environ=environ, arguments=settings_arguments(args))


def settings_arguments(args: argparse.Namespace) -> dict[str, str | None]:
    """The Settings fields the options gave; an option a command does not take is not given."""
    options = (*SETTINGS_OPTIONS, *SPARK_OPTIONS, *FEED_OPTIONS)
    return {option.field: getattr(args, option.field, None) for option in options}


def settings_in(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """The settings a job will build from `argv`, read before it runs (`sluiceway submit`)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_settings_options(parser, spark=True)
    parsed, _job_options = parser.parse_known_args(argv)
    return settings_from(parsed, environ)


# --- ingest -------------------------------------------------------------------------------


def add_landing_options(parser: argparse.ArgumentParser, *, source_option: bool) -> None:
    """The landing file: `--source` for the job (as Glue passes it), PATH for the command."""
    source_help = "landing file: local path or s3://bucket/key"
    if source_option:
        parser.add_argument("--source", required=True, help=source_help)
    else:
        parser.add_argument("source", metavar="PATH", help=source_help)
    parser.add_argument(
        "--manifest", help="manifest to check (default: the landing file + .manifest.json)"
    )
    parser.add_argument("--source-version", help="S3 version id of the landing object")
    parser.add_argument(
        "--max-rejected-share",
        type=float,
        help="refuse the whole file (exit 2, nothing published) when more than this share of "
        "its lines is rejected, e.g. 0.2; default the feed's (0.05), judged from 1000 "
        "rejected lines on",
    )


def add_ingest_arguments(parser: argparse.ArgumentParser, *, source_option: bool) -> None:
    """Everything `jobs/ingest_landing.py` and `sluiceway ingest` take."""
    add_landing_options(parser, source_option=source_option)
    add_settings_options(parser, spark=True)


class JobArgs:
    """What a job script was asked to do; `parse` reads the job's own arguments."""

    JOB: ClassVar[str]

    @classmethod
    def parse(cls, argv: Sequence[str] | None, environ: Mapping[str, str]) -> Self:
        """The job's arguments (Glue-style `--name value`; unknown ones ignored)."""
        return cls.from_namespace(job_parser(cls.JOB).parse_known_args(argv)[0], environ)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Self:
        """The same request from parsed options (the `sluiceway` command's, too)."""
        raise NotImplementedError


@dataclass(frozen=True)
class IngestArgs(JobArgs):
    """What an ingest was asked to do."""

    JOB: ClassVar[str] = "ingest"

    source: str
    manifest: str | None
    source_version: str | None
    settings: Settings
    # The feed's whole-file rules (ingest/file_policy.py), with --max-rejected-share applied.
    file_policy: FilePolicy | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Self:
        # Step Functions passes "" when the landing bucket gave no version id.
        version = args.source_version or None
        settings = settings_from(args, environ)
        policy = feed_policy(settings.feed_contract()).with_max_rejected_share(
            args.max_rejected_share
        )
        return cls(args.source, args.manifest, version, settings, policy)


# --- process ------------------------------------------------------------------------------


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
    """How records are processed: what `process`, `run` and the process job share."""
    parser.add_argument(
        "--handler",
        # Not `handler`: the command keeps its sub-command function under that name.
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


def add_process_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything `jobs/process_records.py` and `sluiceway process` take."""
    parser.add_argument("--ingest-id", help="only this ingest (its id from ingest_ledger)")
    parser.add_argument(
        "--source", help="only the ingest of this landing file (as given to the ingest)"
    )
    add_process_options(parser)
    add_settings_options(parser, spark=True)


def process_options(args: argparse.Namespace) -> ProcessOptions:
    """ProcessOptions from parsed arguments, with a clear error for nonsense values."""
    from sluiceway.processing import ProcessOptions

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
class ProcessArgs(JobArgs):
    """What a processing run was asked to do: one ingest, or with neither every pending record."""

    JOB: ClassVar[str] = "process"

    source: str | None
    ingest_id: str | None
    options: ProcessOptions
    settings: Settings

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Self:
        settings = only_processed_feed(settings_from(args, environ))
        options = process_options(args)
        # The state machine passes "" for the selector it does not use.
        return cls(args.source or None, args.ingest_id or None, options, settings)


def only_processed_feed(settings: Settings) -> Settings:
    """Processing's handlers read the transactions feed's columns: another feed is refused
    before Spark starts (its records are ingested and queried, not processed)."""
    if settings.feed != DEFAULT_FEED:
        raise ConfigurationError(
            f"processing handles the {DEFAULT_FEED} feed only, not {settings.feed!r}: that "
            "feed's records are ingested (`sluiceway ingest --feed`) and queried, not "
            "processed (docs/feeds.md)"
        )
    return settings


# --- run (ingest, then process) -------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything `sluiceway run` takes: the ingest's landing file, the processing options."""
    add_landing_options(parser, source_option=False)
    add_process_options(parser)
    add_settings_options(parser, spark=True)


@dataclass(frozen=True)
class RunArgs:
    """Ingest one landing file, then process its accepted records."""

    landing: IngestArgs
    options: ProcessOptions

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> RunArgs:
        landing = IngestArgs.from_namespace(args, environ)
        only_processed_feed(landing.settings)
        return cls(landing, process_options(args))


# --- maintain -----------------------------------------------------------------------------


def add_maintain_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything `jobs/maintain_tables.py` and `sluiceway maintain` take."""
    parser.add_argument("--table", action="append", help="only this table (repeatable)")
    parser.add_argument("--retention-days", type=float, default=7.0, help="snapshot age kept")
    parser.add_argument("--retain-last", type=int, default=10, help="snapshots always kept")
    parser.add_argument(
        "--orphan-age-days", type=float, default=3.0, help="only older orphan files are removed"
    )
    add_settings_options(parser, spark=True)


def _days(option: str, value: float) -> timedelta:
    try:
        return timedelta(days=value)
    except (OverflowError, ValueError) as error:
        raise ConfigurationError(f"{option} {value:g} is out of range ({error})") from error


@dataclass(frozen=True)
class MaintainArgs(JobArgs):
    """Which tables to maintain (none = every existing one) and what to keep."""

    JOB: ClassVar[str] = "maintain"

    tables: tuple[str, ...]
    options: MaintenanceOptions
    settings: Settings

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Self:
        """Checked before Spark starts: a wrong table or retention costs no JVM."""
        from sluiceway.maintenance import MaintenanceOptions, check_table_names

        settings = settings_from(args, environ)
        tables = tuple(args.table or ())
        check_table_names(tables)
        options = MaintenanceOptions(
            snapshot_retention=_days("--retention-days", args.retention_days),
            retain_last=args.retain_last,
            orphan_age=_days("--orphan-age-days", args.orphan_age_days),
        )
        return cls(tables, options, settings)


# --- stream -------------------------------------------------------------------------------


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything `jobs/stream_transactions.py` and `sluiceway stream` take."""
    parser.add_argument("--topic", required=True, help="the Kafka topic of landing lines")
    parser.add_argument(
        "--bootstrap-servers", required=True, help="Kafka brokers, e.g. 127.0.0.1:9092"
    )
    parser.add_argument(
        "--checkpoint",
        help="where Spark keeps the stream's offsets; default WAREHOUSE/_checkpoints/"
        "NAMESPACE/stream/TOPIC (S3 on AWS)",
    )
    parser.add_argument(
        "--trigger-seconds", type=float, default=10.0, help="a micro-batch every N s; default 10"
    )
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="read what the topic holds now, in batches, then stop (a scheduled catch-up)",
    )
    parser.add_argument(
        "--max-records-per-batch",
        type=int,
        default=500_000,
        help="upper bound of a micro-batch; default 500000",
    )
    parser.add_argument(
        "--starting-offsets",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a new stream starts when the ledger has none of its batches",
    )
    parser.add_argument(
        "--kafka-option",
        action="append",
        metavar="KEY=VALUE",
        help="Kafka client setting, repeatable or comma-separated, e.g. "
        "security.protocol=SASL_SSL (the kafka. prefix is added)",
    )
    parser.add_argument(
        "--kafka-options", help="the same as one argument (Glue cannot repeat an argument)"
    )
    parser.add_argument(
        "--consumer-group",
        default="sluiceway-stream",
        help="Kafka consumer group the stream reports its offsets under (for lag alarms; "
        "where it resumes comes from the checkpoint and the ledger); default sluiceway-stream",
    )
    parser.add_argument(
        "--no-process",
        dest="process",
        action="store_false",
        help="only ingest; by default each batch's records are processed after its publish",
    )
    parser.add_argument(
        "--lease-wait-seconds",
        type=int,
        default=600,
        help="how long a batch waits for the writer lease a file ingest holds; default 600",
    )
    add_process_options(parser)
    add_settings_options(parser, spark=True)


@dataclass(frozen=True)
class StreamArgs(JobArgs):
    """What a stream was asked to do."""

    JOB: ClassVar[str] = "stream"

    options: StreamOptions
    settings: Settings

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> Self:
        from sluiceway.stream import StreamOptions, parse_kafka_options

        if args.max_records_per_batch < 1 or args.trigger_seconds <= 0:
            raise ConfigurationError(
                "--max-records-per-batch must be at least 1 and --trigger-seconds above 0; "
                f"got {args.max_records_per_batch} and {args.trigger_seconds}"
            )
        kafka = [*(args.kafka_option or ()), *([args.kafka_options] if args.kafka_options else [])]
        options = StreamOptions(
            topic=args.topic,
            bootstrap_servers=args.bootstrap_servers,
            checkpoint=args.checkpoint or "",
            trigger_seconds=args.trigger_seconds,
            available_now=args.available_now,
            max_records_per_batch=args.max_records_per_batch,
            starting_offsets=args.starting_offsets,
            kafka_options=parse_kafka_options(kafka),
            process=args.process,
            process_options=process_options(args),
            lease_wait_seconds=args.lease_wait_seconds,
            consumer_group=args.consumer_group,
        )
        settings = settings_from(args, environ)
        if options.process:
            only_processed_feed(settings)
        return cls(options, settings)


# --- the job parsers ----------------------------------------------------------------------


def _add_ingest_job_arguments(parser: argparse.ArgumentParser) -> None:
    add_ingest_arguments(parser, source_option=True)


# job -> (script, description, the arguments it takes)
JOBS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "ingest": (
        "ingest_landing.py",
        "Ingest one landing file into the Iceberg tables.",
        _add_ingest_job_arguments,
    ),
    "process": (
        "process_records.py",
        "Process accepted records: of one ingest (--source or --ingest-id) or, with neither, "
        "every accepted record without a result.",
        add_process_arguments,
    ),
    "stream": (
        "stream_transactions.py",
        "Stream landing lines from a Kafka topic into the Iceberg tables, micro-batch by "
        "micro-batch, and process each batch's accepted records.",
        add_stream_arguments,
    ),
    "maintain": (
        "maintain_tables.py",
        "Compact small files, rewrite manifests, expire snapshots, remove orphan files.",
        add_maintain_arguments,
    ),
}


def job_parser(job: str) -> argparse.ArgumentParser:
    """The parser of the job script for `job` (ingest, process or maintain)."""
    script, description, add_arguments = JOBS[job]
    parser = argparse.ArgumentParser(prog=script, description=description)
    add_arguments(parser)
    return parser
