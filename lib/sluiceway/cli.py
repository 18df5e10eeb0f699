"""The `sluiceway` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway import pipeline
from sluiceway.errors import ExitCode
from sluiceway.job_arguments import (
    IngestArgs,
    MaintainArgs,
    ProcessArgs,
    RunArgs,
    StreamArgs,
    add_feed_options,
    add_ingest_arguments,
    add_maintain_arguments,
    add_process_arguments,
    add_run_arguments,
    add_settings_options,
    add_stream_arguments,
    only_processed_feed,
    settings_arguments,
    settings_from,
    settings_in,
)
from sluiceway.logs import default_log_file, get_logger, spark_log_file
from sluiceway.settings import Settings
from sluiceway.statuses import SKIPPED
from sluiceway.terminal import Progress

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.feeds import Feed
    from sluiceway.generate import Manifest
    from sluiceway.ingest import IngestResult
    from sluiceway.processing import ProcessResult

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

LOGGER = get_logger(__name__)
Handler = Callable[[argparse.Namespace], int]
# Generating fewer records takes a few seconds: no progress lines for them.
GENERATE_PROGRESS_FROM = 1_000_000


def _contract(args: argparse.Namespace) -> int:
    from sluiceway.contract import contract_markdown

    feed = settings_from(args, os.environ).feed_contract()
    print(feed_summary(feed))
    print()
    print(contract_markdown(feed))
    return ExitCode.OK


def feed_summary(feed: Feed) -> str:
    """What `sluiceway contract` says about a feed before its tables."""
    severities = {rule.reason: rule.severity for rule in feed.rules if rule.severity != "reject"}
    lines = [
        f"feed {feed.name} (rule_version {feed.rule_version}): {feed.description}",
        f"file: {feed.path}",
        f"tables: namespace {feed.namespace}; key {feed.key}; partitioned by day of "
        f"{feed.event_time}",
    ]
    if feed.arrival is not None:
        lines.append(f"due: {feed.arrival.describe()}")
    lines += [f"severity: {code} is {severity}" for code, severity in severities.items()]
    return "\n".join(lines)


# What each exit code tells the operator (README "Exit codes" shows the same table).
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done (or nothing left to do)",
    ExitCode.UNEXPECTED: "unexpected error, a bug: one line here, the trace in the JSON log",
    ExitCode.BAD_INPUT: "bad input, argument, setting or warehouse: fix it, then re-run",
    ExitCode.RECONCILIATION_FAILED: "counts or totals do not add up: nothing was published",
    ExitCode.BUSY: "another run holds the namespace's writer lease: nothing changed, retry",
    ExitCode.ENDPOINT_UNAVAILABLE: "the processing endpoint is down: records left pending",
    ExitCode.LEASE_LOST: "this run lost its writer lease and stopped before its next commit",
    ExitCode.FEED_LATE: "sluiceway status: a feed's file has not arrived by its due time",
}


def exit_codes_epilog() -> str:
    """The exit-code table at the end of `sluiceway --help`."""
    rows = [f"  {code.value}  {code.name:<22} {EXIT_CODE_MEANINGS[code]}" for code in ExitCode]
    return "exit codes (every command and job):\n" + "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per task; each sub-command has its own --help."""
    parser = argparse.ArgumentParser(
        prog="sluiceway",
        description="Landing CSV of financial transactions -> validated Iceberg tables -> "
        "per-record processing.\nRuns locally (Spark + a local Iceberg warehouse) or on AWS.\n"
        "On a terminal: one progress line, then a summary; the JSON log and Spark's log go to "
        "a file\nnamed at the end. Piped or in CI: JSON log lines on stderr (--log-format).\n"
        "Each partner feed is a versioned contract file (docs/feeds.md): --feed NAME selects "
        "it (default transactions)\nand its tables' namespace; `sluiceway contract --feed NAME` "
        "prints it.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    contract = commands.add_parser(
        "contract",
        help="print a feed's landing-file contract and its reason codes",
        description="Prints the selected feed's contract (default transactions): its file, "
        "rule_version, namespace, columns and reason codes. Each partner feed is a versioned "
        "TOML file (docs/feeds.md); --feed picks it here and on check, ingest, stream, "
        "upload, the jobs and every command that reads the tables.",
    )
    add_feed_options(contract)
    contract.set_defaults(handler=_contract)
    for register in COMMANDS:
        register(commands)
    return parser


def _upload(args: argparse.Namespace) -> int:
    import json

    from sluiceway.feeds import feed_key_prefix
    from sluiceway.logs import configure_logging
    from sluiceway.upload import (
        RetryPolicy,
        TransferSettings,
        UploadOptions,
        run_upload,
        s3_client,
    )

    settings = settings_from(args, os.environ)
    configure_logging("upload", settings.log_level, log_format=settings.log_format)
    options = UploadOptions(
        watch_dir=Path(args.watch_dir),
        bucket=args.bucket,
        archive_dir=Path(args.archive_dir),
        prefix=feed_key_prefix(args.prefix, args.feed),
        state_dir=Path(args.state_dir) if args.state_dir else None,
        min_age=args.min_age,
        dry_run=args.dry_run,
        check_settings=settings if args.check else None,
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


def register_upload(commands: SubParsers) -> None:
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
        "--check",
        action="store_true",
        help="run `sluiceway check` on each complete file first; a file failing a whole-file "
        "rule (header, gzip) is not uploaded and stays where it is (status check_failed)",
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
    add_feed_options(parser)
    parser.set_defaults(handler=_upload)


def _check(args: argparse.Namespace) -> int:
    import json

    from sluiceway.ingest.check import check_landing_file

    settings = settings_from(args, os.environ)
    result = check_landing_file(args.file, settings, args.show, args.workers)
    print(json.dumps(result.to_json()) if args.format == "json" else result.to_text())
    return result.exit_code


def register_check(commands: SubParsers) -> None:
    """`sluiceway check`: pre-flight a landing file with the ingest's rules, no Spark."""
    parser = commands.add_parser(
        "check",
        help="pre-flight a landing file with the ingest's own rules (no Spark, no warehouse)",
        description="Runs the ingest's scan, tokenizer and rules on FILE (local or s3://, "
        "plain or .gz): whole-file problems, counts per reason code, the first rejected "
        "lines. duplicate_in_file is checked over the whole file; already_ingested is not "
        "(it needs the warehouse). Exit 0 when the file passes the whole-file rules (even "
        "with rejected lines), 2 when it fails one.",
    )
    parser.add_argument("file", help="the landing file")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--show", type=int, default=10, help="how many rejected lines to show; default 10"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes; default 2")
    add_feed_options(parser)
    parser.set_defaults(handler=_check)


def _print_ingest_result(result: IngestResult) -> None:
    print(f"ingest {result.ingest_id}: {result.status} — {result.message}")
    if result.status == SKIPPED:
        return
    print(f"  source            {result.source_file}")
    print(f"  lines read        {result.lines_read:>12,}")
    print(f"  records accepted  {result.accepted:>12,}")
    print(f"  records rejected  {result.rejected:>12,}")
    for reason, count in sorted(result.rejected_by_reason.items(), key=lambda item: -item[1]):
        print(f"    {reason:<24}{count:>10,}")
    for currency, total in sorted(result.accepted_amount_by_currency.items()):
        print(f"  accepted {currency}      {total:>18,.2f}")
    print(
        f"  took {result.duration_seconds:.1f} s ({result.lines_per_second:,.0f} lines/s); "
        f"snapshots transactions={result.transactions_snapshot_id} "
        f"rejected_records={result.rejected_snapshot_id}"
    )


def _generate_progress(records: int, progress: Progress) -> Callable[[int], None] | None:
    """Progress on stderr while a large file is generated."""
    if records < GENERATE_PROGRESS_FROM:
        return None

    def report(done: int) -> None:
        progress(f"{done:,} / {records:,} records")

    return report


def _print_generated(out: str, manifest: Manifest) -> None:
    from sluiceway.generate import manifest_path

    print(
        f"wrote {out}: {manifest.records:,} records ({manifest.lines:,} lines), "
        f"{manifest.accepted:,} valid, {manifest.rejected:,} with defects; "
        f"manifest {manifest_path(out)}"
    )


def _generate(args: argparse.Namespace) -> int:
    from sluiceway.generate import generate_landing_file

    manifest = generate_landing_file(
        args.out,
        args.records,
        seed=args.seed,
        defect_rate=args.defect_rate,
        compress=args.gzip,
        progress=_generate_progress(args.records, args.progress),
        line_ending=args.line_ending,
        gzip_members=args.gzip_members,
    )
    args.progress.finish()
    _print_generated(args.out, manifest)
    return ExitCode.OK


def register_generate(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "generate",
        help="write a deterministic sample landing file (and its manifest)",
        description="Write a realistic landing CSV. With --defect-rate > 0 it injects every "
        "kind of defect the validation knows; the manifest beside the file gives the expected "
        "counts per reason and amount totals per currency.",
    )
    parser.add_argument("--records", type=int, required=True, help="number of records")
    parser.add_argument("--out", required=True, help="output path (add .gz with --gzip)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--defect-rate", type=float, default=0.0, help="share of defective records, e.g. 0.01"
    )
    parser.add_argument("--gzip", action="store_true", help="gzip-compress the output")
    parser.add_argument(
        "--line-ending",
        choices=("lf", "crlf", "cr"),
        default="lf",
        help="line end after every line: lf (default), crlf (Windows), cr (old Mac export)",
    )
    parser.add_argument(
        "--gzip-members",
        type=int,
        default=1,
        help="with --gzip: write N concatenated gzip members, as `cat a.gz b.gz` (default 1)",
    )
    parser.set_defaults(handler=_generate)


def _ingest(args: argparse.Namespace) -> int:
    result = _ingest_with(IngestArgs.from_namespace(args, os.environ), args.progress)
    _print_ingest_result(result)
    return result.exit_code


def _ingest_with(request: IngestArgs, progress: Progress) -> IngestResult:
    spark, scanner = pipeline.start_spark_reading("ingest", request, progress)
    result = pipeline.ingest(spark, request, progress, scanner)
    progress.finish()
    return result


def register_ingest(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "ingest",
        help="validate a landing file into the Iceberg tables",
        description="Read a landing CSV (local path or s3:// URI, .gz allowed), validate every "
        "record, append accepted ones to `transactions` and the rest to `rejected_records` "
        "with reasons, and record the file in `ingest_ledger`. Re-running the same file "
        "changes nothing. Exit codes: 0 ok or already ingested, 2 bad input, 3 reconciliation "
        "failed.",
    )
    add_ingest_arguments(parser, source_option=False)
    parser.set_defaults(handler=_ingest)


def _analyst_settings(args: argparse.Namespace) -> Settings:
    """The settings options, with the deployed stack's Athena defaults for an s3:// warehouse."""
    from sluiceway.query import analyst_settings

    return analyst_settings(os.environ, **settings_arguments(args))


def _query(args: argparse.Namespace) -> int:
    print(pipeline.run_query(_analyst_settings(args), args.sql, args.format), end="")
    return ExitCode.OK


def register_query(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "query",
        help="run Athena (Trino) SQL over the tables (DuckDB locally, Athena for s3://)",
        description="Run SQL in Athena's (Trino) dialect over the tables: transactions, "
        "rejected_records, ingest_ledger, processed_transactions, processing_failures, and "
        'metadata tables such as "transactions$snapshots". A local warehouse is read by DuckDB '
        "(the SQL is transpiled with sqlglot), an s3:// one through Athena "
        "($SLUICEWAY_ATHENA_WORKGROUP, default the storage stack's). DECIMAL values print "
        "with all their digits in every format (12.10, never 12.1 or 5.2e+12).",
    )
    parser.add_argument("sql", help='e.g. "SELECT status, COUNT(*) FROM transactions GROUP BY 1"')
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_settings_options(parser, spark=False)
    parser.set_defaults(handler=_query)


def _demo(args: argparse.Namespace) -> int:
    progress: Progress = args.progress
    landing = pipeline.demo_landing_file(
        args.data_dir, args.records, progress=_generate_progress(args.records, progress)
    )
    if landing.generated:
        progress.clear()
        _print_generated(str(landing.path), landing.generated)
    settings = settings_from(args, os.environ)
    result = _ingest_with(IngestArgs(str(landing.path), None, None, settings), progress)
    _print_ingest_result(result)
    print("\nSELECT status, COUNT(*) FROM transactions GROUP BY status")
    print(pipeline.run_query(_analyst_settings(args), pipeline.DEMO_QUERY, "table"), end="")
    _print_next_steps(settings)
    return result.exit_code


def _print_next_steps(settings: Settings) -> None:
    """Where the tables are and what to try next, with this run's warehouse and namespace."""
    where = f"--warehouse {shlex.quote(settings.warehouse)}"
    if settings.namespace != Settings.namespace:
        where += f" --namespace {shlex.quote(settings.namespace)}"
    print(f"\nwarehouse  {settings.warehouse} (namespace {settings.namespace})")
    print(f"next       sluiceway process {where}")
    print(f"           sluiceway report --out report.html {where}")


def register_demo(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "demo",
        help="generate a sample file, ingest it, and query the result",
        description="The two-minute tour: generate a landing file with a few defects, ingest "
        "it into the local warehouse and show transactions by status. On a terminal: one "
        "progress line, then one summary (accepted, rejected by reason, seconds, transactions "
        "by status, the warehouse, the commands to try next, the log file).",
    )
    parser.add_argument("--records", type=int, default=200_000, help="records to generate")
    parser.add_argument("--data-dir", default=".data", help="where the sample file goes")
    add_settings_options(parser, spark=True)
    parser.set_defaults(handler=_demo)


def _statemachine_run(args: argparse.Namespace) -> int:
    import time

    from sluiceway.orchestration import run_pipeline

    execution, _runner = run_pipeline(
        settings_from(args, os.environ),
        args.source,
        source_version=args.source_version,
        engine=args.engine,
        workdir=Path(args.workdir),
        sleep=(lambda _seconds: None) if args.no_backoff else time.sleep,
    )
    for event in execution.history:
        if event.kind == "StateEntered":
            print(f"-> {event.state}")
        elif event.kind in ("TaskFailed", "RetryScheduled", "Caught"):
            print(f"   {event.kind}: {', '.join(f'{k}={v}' for k, v in event.detail.items())}")
    print(f"execution {execution.name}: {execution.status}")
    if execution.status != "SUCCEEDED":
        print(f"error: {execution.error}\ncause: {execution.cause}", file=sys.stderr)
        return 1
    return 0


def _statemachine_render(args: argparse.Namespace) -> int:
    from sluiceway.orchestration.template import render_template

    for template in map(Path, args.templates):
        output = Path(args.output_dir) / template.name
        inlined = render_template(template, output)
        names = ", ".join(path.name for path in inlined) or "no definitions"
        print(f"{output} ({names} inlined)")
    return ExitCode.OK


def register_statemachine(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "statemachine",
        help="run the deployed Step Functions definition locally, or render the templates",
        description="The state machine AWS runs (infra/statemachine/pipeline.asl.json), "
        "followed offline: Glue / EMR Serverless / Batch tasks become local job runs.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="ingest then process one landing file, following the definition",
        description="Runs jobs/ingest_landing.py and jobs/process_records.py as the state "
        "machine would: retries, Batch fallback (the same job with --profile batch), "
        "and the failure notification, printed instead of sent.",
    )
    run.add_argument("source", help="landing file (local path or s3:// URI)")
    run.add_argument("--source-version", help="S3 version id of the landing object")
    run.add_argument("--engine", choices=("glue", "emr-serverless"), default="glue")
    run.add_argument("--workdir", default=".", help="the folder that holds jobs/ (default .)")
    run.add_argument(
        "--no-backoff", action="store_true", help="retry at once instead of waiting the backoff"
    )
    add_settings_options(run, spark=False)
    run.set_defaults(handler=_statemachine_run)
    render = actions.add_parser(
        "render",
        help="inline the state machine definitions into CloudFormation templates",
        description="Replaces each `Definition: <file>.asl.json` line with the file's JSON, so "
        "cfn-lint checks inside the definition and the template deploys as one file.",
    )
    render.add_argument("templates", nargs="+", help="templates under infra/cloudformation/")
    render.add_argument("--output-dir", required=True, help="where the rendered templates go")
    render.set_defaults(handler=_statemachine_render)


def _print_process_result(result: ProcessResult) -> None:
    summary = result.metrics.summary()
    print(f"process ({result.handler}): {result.pending:,} records pending")
    print(f"  processed ok      {summary['records_ok']:>12,}")
    print(f"  failed (dead)     {summary['records_failed']:>12,}")
    print(f"  retried           {summary['records_retried']:>12,}")
    print(f"  attempts          {summary['attempts']:>12,}")
    print(
        f"  batches {summary['batches']:,}: latency p50 {summary['batch_latency_ms_p50']} ms, "
        f"p95 {summary['batch_latency_ms_p95']} ms, p99 {summary['batch_latency_ms_p99']} ms"
    )
    print(f"  took {summary['seconds']} s ({summary['records_per_second']:,.0f} records/s)")
    for item in result.reconciliation:
        verdict = "reconciled" if item.reconciled else "NOT reconciled"
        print(
            f"  {item.ingest_id}: accepted {item.accepted:,} = processed {item.processed:,} "
            f"+ failed {item.failed:,} (duplicates {item.duplicates}): {verdict}"
        )


def _process(args: argparse.Namespace) -> int:
    request = ProcessArgs.from_namespace(args, os.environ)
    spark = pipeline.start_spark("process", request.settings, args.progress)
    with _watching(spark, "processing", args.progress):
        result = pipeline.process(spark, request)
    args.progress.finish()
    _print_process_result(result)
    return result.exit_code


def _watching(spark: SparkSession, step: str, progress: Progress) -> AbstractContextManager[None]:
    """On a terminal, Spark's running tasks on the progress line while `step` runs; in logs
    nothing (a line a second would drown them)."""
    if not progress.in_place:
        return nullcontext()
    from sluiceway.spark import running_tasks

    return running_tasks(spark, step, progress)


def register_process(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "process",
        help="run a handler over accepted records (default: the financial handler)",
        description="Process the accepted records of one ingest (--ingest-id or --source), or "
        "with neither every accepted record without a result, in batches with retries; "
        "records that keep failing go to processing_failures. Re-running processes only what "
        "is left. Exit codes: 0 reconciled, 2 bad input, 3 not reconciled, 4 another run "
        "holds the namespace's writer lease, 5 endpoint unavailable (records left pending).",
    )
    add_process_arguments(parser)
    parser.set_defaults(handler=_process)


def _stream(args: argparse.Namespace) -> int:
    request = StreamArgs.from_namespace(args, os.environ)
    spark = pipeline.start_spark("stream", request.settings, args.progress)
    summary = pipeline.stream(spark, request, args.progress)
    args.progress.finish()
    print(summary.describe())
    return summary.exit_code


def register_stream(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "stream",
        help="ingest landing lines from a Kafka topic, micro-batch by micro-batch",
        description="Reads --topic with Spark Structured Streaming; each Kafka value is one "
        "landing line (the contract's CSV form, `sluiceway contract`). Every micro-batch goes "
        "through the file ingest's tokenizer, rules and duplicate checks, is published to "
        "transactions and rejected_records once (its ingest id is its offset ranges; "
        "source_file is kafka://TOPIC/PARTITION and line_number the offset), gets one "
        "ingest_ledger row, and, unless --no-process, its accepted records are processed "
        "right after. Runs until stopped, or with --available-now until the topic is read. "
        "Exit codes: 0 stopped cleanly, 2 bad input, 3 a batch failed its audit (nothing of "
        "it published; the stream stops), 4 busy, 5 records left pending, 6 lease lost.",
    )
    add_stream_arguments(parser)
    parser.set_defaults(handler=_stream)


def _redrive(args: argparse.Namespace) -> int:
    from sluiceway.processing.redrive import redrive

    settings = only_processed_feed(settings_from(args, os.environ))
    spark = pipeline.start_spark("redrive", settings, args.progress)
    with _watching(spark, "redriving dead letters", args.progress):
        result = redrive(spark, settings, ingest_id=args.ingest_id, error_class=args.error_class)
    args.progress.finish()
    if not result.redriven:
        print("redrive: no matching dead letters; nothing changed")
        return ExitCode.OK
    print(
        f"redrive: {result.redriven:,} dead letters put back to pending "
        f"({', '.join(result.ingest_ids)}); `sluiceway process` retries them"
    )
    return ExitCode.OK


def register_redrive(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "redrive",
        help="put dead letters (processing_failures) back to pending",
        description="Remove the matching dead letters from processing_failures so the next "
        "`sluiceway process` retries their records (same idempotency keys). Running it twice "
        "changes nothing. Exit codes: 0 done, 2 bad input, 4 another run holds the lease.",
    )
    parser.add_argument("--ingest-id", help="only this ingest's dead letters")
    parser.add_argument("--error-class", help="only dead letters of this error class")
    add_settings_options(parser, spark=True)
    parser.set_defaults(handler=_redrive)


def _run(args: argparse.Namespace) -> int:
    request = RunArgs.from_namespace(args, os.environ)
    progress: Progress = args.progress

    def ingested(result: IngestResult) -> None:
        progress.clear()  # the ingest's summary goes where the progress line was
        _print_ingest_result(result)
        if not result.exit_code:
            progress(f"processing the accepted records of {result.ingest_id}")

    spark, scanner = pipeline.start_spark_reading("run", request.landing, progress)
    result = pipeline.ingest_then_process(spark, request, ingested, progress, scanner)
    progress.finish()
    if result.processed:
        _print_process_result(result.processed)
    return result.exit_code


def register_run(commands: SubParsers) -> None:
    parser = commands.add_parser(
        "run",
        help="ingest a landing file, then process it (what the state machine does)",
        description="The local equivalent of the Step Functions state machine: ingest FILE, "
        "then process its accepted records. Exit codes: 0 reconciled, 2 bad input, "
        "3 reconciliation failed (ingest or processing).",
    )
    add_run_arguments(parser)
    parser.set_defaults(handler=_run)


def _maintain(args: argparse.Namespace) -> int:
    import json

    request = MaintainArgs.from_namespace(args, os.environ)
    spark = pipeline.start_spark("maintain", request.settings, args.progress)
    with _watching(spark, "maintaining the tables", args.progress):
        results = pipeline.maintain(spark, request)
    args.progress.finish()
    for result in results:
        print(json.dumps(result.__dict__))
    return ExitCode.OK


def register_maintain(commands: SubParsers) -> None:
    """`sluiceway maintain`: compact and expire the Iceberg tables (jobs/maintain_tables.py)."""
    parser = commands.add_parser(
        "maintain",
        help="compact small files, rewrite manifests, expire snapshots, remove orphan files",
        description="Runs Iceberg's rewrite_data_files, rewrite_manifests, expire_snapshots and "
        "remove_orphan_files on each table, holding the namespace's writer lease: while "
        "another run writes, maintenance is skipped with one line naming it (exit code 4). "
        "Prints one JSON line per table with data files before and after.",
    )
    add_maintain_arguments(parser)
    parser.set_defaults(handler=_maintain)


def _report(args: argparse.Namespace) -> int:
    from sluiceway.report import write_report

    facts = write_report(_analyst_settings(args), args.out, args.ingest_id)
    state = "reconciled" if facts.reconciled else "NOT reconciled"
    print(f"wrote {args.out}: ingest {facts.ingest_id}, {state}")
    return ExitCode.OK if facts.reconciled else ExitCode.RECONCILIATION_FAILED


def register_report(commands: SubParsers) -> None:
    """`sluiceway report`: a self-contained HTML page about one ingest and its processing."""
    parser = commands.add_parser(
        "report",
        help="write a self-contained HTML run report (counts, rejects, outcomes, cost)",
        description="Reads the tables (DuckDB locally, Athena for an s3:// warehouse) and "
        "writes one HTML file with inline charts: counts "
        "and reconciliation, rejects by reason, processing outcomes, each run's own seconds, "
        "workers and cost (seconds x workers x the price of a worker-hour, setting "
        "worker_hour_usd) and the Iceberg snapshots written. Exit 3 if the ingest does not "
        "reconcile.",
    )
    parser.add_argument(
        "--ingest-id",
        help="the ingest to report on; default the latest landing file (a stream batch only when "
        "no file was ever ingested)",
    )
    parser.add_argument("--out", required=True, help="HTML file to write")
    add_settings_options(parser, spark=False)
    parser.set_defaults(handler=_report)


def _submit(args: argparse.Namespace) -> int:
    from sluiceway.spark import submit_job

    arguments = args.job_arguments[1:] if args.job_arguments[:1] == ["--"] else args.job_arguments
    # The job's own arguments decide its settings (profile, warehouse), as they will inside it.
    settings = settings_in(arguments, os.environ)
    return submit_job(settings, args.job, arguments, print_only=args.print_only)


def register_submit(commands: SubParsers) -> None:
    """`sluiceway submit JOB -- ARGS`: spark-submit with the Iceberg runtime and the job's conf."""
    parser = commands.add_parser(
        "submit",
        help="run jobs/JOB.py with spark-submit, adding the Iceberg runtime jar and the conf",
        description="spark-submit starts the driver before the job's code runs, so the Iceberg "
        "runtime must be on its command line: this builds `spark-submit --conf spark.jars=<the "
        "jar that `sluiceway jars` fetched> --conf ... jobs/JOB.py ARGS` and runs it with "
        "this interpreter. Exits with the job's exit code.",
    )
    parser.add_argument(
        "--print", dest="print_only", action="store_true", help="print the command, do not run it"
    )
    parser.add_argument("job", help="ingest_landing, process_records or maintain_tables")
    parser.add_argument(
        "job_arguments",
        nargs=argparse.REMAINDER,
        help="the job's own arguments, after -- (options of submit go before JOB)",
        metavar="-- ARGS",
    )
    parser.set_defaults(handler=_submit)


def _jars(args: argparse.Namespace) -> int:
    import time

    from sluiceway import class_archive
    from sluiceway.runtime_jars import Maven, fetch_jars, jar_cache, pinned_jars

    maven = Maven(args.repository, args.local_repository)
    fetched = fetch_jars(jar_cache(), pinned_jars().values(), maven)
    for jar in fetched:
        print(f"{jar.action:<8} {jar.pin.coordinate}  {jar.path} ({jar.seconds:.1f} s, sha256 ok)")
    started = time.monotonic()
    archive = class_archive.archive_path()
    if args.class_archive and archive is not None and not archive.is_file():
        print("writing the Spark class archive once (about a minute; Spark then starts faster)")
        class_archive.build_archive()
        print(f"written  {archive} ({time.monotonic() - started:.1f} s)")
    return ExitCode.OK


def register_jars(commands: SubParsers) -> None:
    """`sluiceway jars`: fetch the pinned Iceberg jars once with Maven and check their SHA-256."""
    parser = commands.add_parser(
        "jars",
        help="fetch the pinned Iceberg jars with mvn, check their SHA-256 (what `make venv` runs)",
        description="Local Spark needs Iceberg's Spark runtime (and, for an s3:// warehouse, "
        "Iceberg's AWS bundle). Each jar pinned in lib/sluiceway/data/runtime-jars.lock is "
        "fetched once by `mvn` (maven-dependency-plugin's get, from the repositories and "
        "mirrors of Maven's settings.xml), copied into this interpreter's share/sluiceway/jars "
        "and kept only if its SHA-256 is the pinned one; a jar already there with that digest "
        "is not fetched again (no Maven, no network), a damaged one is replaced. Exit 2 if "
        "Maven is missing or a jar cannot be fetched or does not match.",
    )
    parser.add_argument(
        "--repository",
        metavar="URL",
        help="an extra Maven repository to fetch from (a mirror); by default only the "
        "repositories Maven's settings.xml gives",
    )
    parser.add_argument(
        "--local-repository",
        metavar="DIR",
        type=Path,
        help="Maven's local repository, where mvn keeps what it fetched (default "
        "~/.m2/repository, Maven's own)",
    )
    parser.add_argument(
        "--no-class-archive",
        dest="class_archive",
        action="store_false",
        help="do not write the local Spark driver's class-data-sharing archive (written once "
        "by default: a short training run whose classes every later local Spark start maps, "
        "~4 s instead of ~6 s; images whose Spark runs on an s3:// warehouse do not use it)",
    )
    parser.set_defaults(handler=_jars)


# --- status: is every feed's file in? ----------------------------------------------------------


def _moment(text: str) -> datetime:
    """An ISO 8601 time for --now; without an offset it is UTC."""
    from sluiceway.arrival import as_utc

    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from error


def _status(args: argparse.Namespace) -> int:
    import json

    from sluiceway.arrival import packaged_feeds
    from sluiceway.feed_status import feed_statuses, status_table
    from sluiceway.query import analyst_settings

    given = args.namespace or os.environ.get("SLUICEWAY_NAMESPACE")

    def settings_for(namespace: str) -> Settings:
        arguments = {**settings_arguments(args), "namespace": given or namespace}
        return analyst_settings(os.environ, **arguments)

    now = args.now or datetime.now(UTC)
    statuses = feed_statuses(packaged_feeds(), settings_for, now)
    if args.json:
        feeds = [item.to_json() for item in statuses]
        print(json.dumps({"now": now.isoformat(), "feeds": feeds}, indent=2))
    else:
        print(status_table(statuses))
    return ExitCode.FEED_LATE if any(item.status.is_late for item in statuses) else ExitCode.OK


def register_status(commands: SubParsers) -> None:
    """`sluiceway status`: each feed's last completed file and whether it is late."""
    parser = commands.add_parser(
        "status",
        help="each feed's last completed file, its age, and ok / waiting / late (cron-friendly)",
        description="For each feed (lib/sluiceway/data/feeds/*.toml) reads the newest "
        "completed ingest of its namespace from ingest_ledger (DuckDB locally, Athena for "
        "s3://; no Spark) and says: ok (a file completed in the current window), waiting "
        "(none yet, before the [arrival] due time) or late (the due time passed without one; "
        "late stays late until a file completes). Exit 0 when no feed is late, 7 (FEED_LATE) "
        "when one is (cron-friendly: `sluiceway status --json || notify`), 2 for a bad "
        "argument or warehouse. --namespace reads every feed from that namespace "
        "(e.g. the deployed stack's Glue database).",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document for machines")
    parser.add_argument(
        "--now",
        type=_moment,
        help="decide as of this ISO 8601 time (UTC unless it has an offset); default now",
    )
    add_settings_options(parser, spark=False)
    parser.set_defaults(handler=_status)


# Each entry adds one sub-command to the parser (see the register_* functions above).
COMMANDS: tuple[Callable[[SubParsers], None], ...] = (
    register_generate,
    register_check,
    register_ingest,
    register_query,
    register_demo,
    register_upload,
    register_statemachine,
    register_process,
    register_stream,
    register_redrive,
    register_run,
    register_maintain,
    register_report,
    register_status,
    register_submit,
    register_jars,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: every failure becomes one line and an exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    terminal = sys.stderr.isatty()
    log_format, log_file = _log_output(args, os.environ, terminal=terminal)
    # JSON lines asked for on a terminal go with plain progress lines, as in a log.
    progress = Progress(sys.stderr, in_place=terminal and log_format == "text")
    args.progress = progress

    def step() -> int:
        try:
            return handler(args)
        finally:
            progress.finish()  # an error's one line goes where the progress line was

    try:
        return pipeline.run_step(f"sluiceway {args.command}", step)
    except KeyboardInterrupt:
        print(f"sluiceway {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last resort: a bug, or a failure nobody anticipated
        return _unexpected(args.command, error, log_format, log_file)
    finally:
        _print_log_files(log_file)


def _log_output(
    args: argparse.Namespace, environ: Mapping[str, str], *, terminal: bool
) -> tuple[str, str]:
    """The log format and file of this run: what --log-format, --log-file or SLUICEWAY_LOG_*
    say, else for a person on a terminal text lines and a log file of its own, else JSON.

    Written back into the options of a command that takes them, so its settings carry them.
    """
    log_format = (
        getattr(args, "log_format", None)
        or environ.get("SLUICEWAY_LOG_FORMAT")
        or ("text" if terminal else "json")
    )
    log_file = getattr(args, "log_file", None) or environ.get("SLUICEWAY_LOG_FILE", "")
    if terminal and log_format == "text" and not log_file:
        log_file = default_log_file(args.command, datetime.now(), os.getpid())
    if hasattr(args, "log_format"):
        args.log_format, args.log_file = log_format, log_file
    return log_format, log_file


def _print_log_files(log_file: str) -> None:
    """Name the run's log file (and Spark's beside it) once, when the terminal kept them out."""
    if not log_file or not sys.stderr.isatty():
        return
    written = [path for path in (log_file, spark_log_file(log_file)) if Path(path).is_file()]
    if written:
        print(f"log        {' and '.join(written)}", file=sys.stderr)


def _unexpected(command: str, error: Exception, log_format: str, log_file: str) -> int:
    """Log the whole trace (Python and Java), then print one line saying where it is."""
    import logging

    from sluiceway.logs import LOGGER_NAME, configure_logging

    if not logging.getLogger(LOGGER_NAME).handlers:
        configure_logging(command, log_format=log_format, log_file=log_file)
    LOGGER.error("unexpected error in sluiceway %s", command, exc_info=error)
    where = log_file or ("the JSON log above" if log_format == "json" else "the log above")
    print(
        f"sluiceway {command}: unexpected error: {_one_line(error)}; details in {where}",
        file=sys.stderr,
    )
    return ExitCode.UNEXPECTED


def _one_line(error: Exception) -> str:
    """The error's first line; for a Java exception its class and message, not py4j's frame."""
    import contextlib

    text = str(error)
    java = getattr(error, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone; the Python text will do
            text = str(java.toString())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else "(no message)"
    return f"{type(error).__name__}: {first[:300]}"


if __name__ == "__main__":
    raise SystemExit(main())
