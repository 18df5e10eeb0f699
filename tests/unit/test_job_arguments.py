"""One definition of the job arguments serves the jobs and the `sluiceway` command.

No JVM: the parsers, the typed arguments they produce, and a job script's `main` refusing
bad arguments before Spark starts.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

from sluiceway.cli import build_parser
from sluiceway.errors import ConfigurationError, ExitCode
from sluiceway.job_arguments import (
    SETTINGS_OPTIONS,
    SPARK_OPTIONS,
    IngestArgs,
    MaintainArgs,
    ProcessArgs,
    job_parser,
    settings_in,
)

pytestmark = pytest.mark.unit

JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs"
# What Glue adds to every run on its own; the jobs must ignore it.
GLUE_EXTRAS = ["--JOB_NAME", "sluiceway-dev-maintenance", "--job-bookmark-option", "disable"]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    choices: dict[str, argparse.ArgumentParser] = parser._subparsers._group_actions[0].choices
    return choices


def options_of(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    """Every option string of a parser with its help, without -h/--help."""
    return {
        flag: action.help
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for flag in action.option_strings
    }


def load_job(script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"job_{script}", JOBS_DIR / f"{script}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("job", "command", "only_in_the_job"),
    [
        ("ingest", "ingest", {"--source"}),
        ("process", "process", set()),
        ("maintain", "maintain", set()),
    ],
)
def test_a_job_and_its_command_take_the_same_options_with_the_same_help(
    job: str, command: str, only_in_the_job: set[str]
) -> None:
    in_job = options_of(job_parser(job))
    in_command = options_of(command_parsers()[command])
    assert set(in_job) - set(in_command) == only_in_the_job
    assert set(in_command) <= set(in_job)
    assert {flag: in_job[flag] for flag in in_command} == in_command
    settings_flags = {option.flag for option in (*SETTINGS_OPTIONS, *SPARK_OPTIONS)}
    assert settings_flags <= set(in_job)


def test_every_settings_option_means_the_same_in_every_command_and_job() -> None:
    parsers = [*command_parsers().values(), *(job_parser(job) for job in ("ingest", "process"))]
    expected = {option.flag: option.help for option in (*SETTINGS_OPTIONS, *SPARK_OPTIONS)}
    seen: dict[str, set[str | None]] = {}
    for parser in parsers:
        for flag, help_text in options_of(parser).items():
            if flag in expected:
                seen.setdefault(flag, set()).add(help_text)
    assert seen == {flag: {help_text} for flag, help_text in expected.items()}
    for command in ("ingest", "process", "run", "redrive", "maintain", "query", "report", "demo"):
        assert {"--namespace", "--log-level", "--warehouse", "--profile"} <= set(
            options_of(command_parsers()[command])
        ), command


def test_the_glue_maintenance_job_takes_retention_like_sluiceway_maintain() -> None:
    argv = [
        "--profile", "glue",
        "--warehouse", "s3://warehouse/",
        "--namespace", "sluiceway_dev",
        "--lease-table", "sluiceway-dev-leases",
        "--retention-days", "2.5",
        "--retain-last", "3",
        "--orphan-age-days", "4",
        "--table", "transactions",
        *GLUE_EXTRAS,
    ]  # fmt: skip
    job = MaintainArgs.parse(argv, {})
    command = MaintainArgs.from_namespace(build_parser().parse_args(["maintain", *argv[:-4]]), {})

    assert job.tables == ("transactions",)
    assert job.options.snapshot_retention == timedelta(days=2.5)
    assert (job.options.retain_last, job.options.orphan_age) == (3, timedelta(days=4))
    assert (job.settings.profile, job.settings.namespace) == ("glue", "sluiceway_dev")
    assert job.settings.lease_table == "sluiceway-dev-leases"
    assert (command.tables, command.settings) == (job.tables, job.settings)
    assert command.options.snapshot_retention == job.options.snapshot_retention


def test_maintenance_defaults_keep_a_week_and_ten_snapshots() -> None:
    job = MaintainArgs.parse(GLUE_EXTRAS, {})
    assert job.tables == ()
    assert job.options.snapshot_retention == timedelta(days=7)
    assert (job.options.retain_last, job.options.orphan_age) == (10, timedelta(days=3))


def test_ingest_and_process_jobs_read_glue_style_arguments_over_the_environment() -> None:
    environ = {"SLUICEWAY_NAMESPACE": "from_env", "SLUICEWAY_LOG_LEVEL": "WARNING"}
    ingest = IngestArgs.parse(
        ["--source", "s3://b/k.csv", "--source-version", "", "--log-level", "DEBUG", *GLUE_EXTRAS],
        environ,
    )
    assert (ingest.source, ingest.source_version) == ("s3://b/k.csv", None)
    assert (ingest.settings.namespace, ingest.settings.log_level) == ("from_env", "DEBUG")

    process = ProcessArgs.parse(
        ["--source", "", "--ingest-id", "ing_1", "--namespace", "ns", "--handler", "noop",
         "--handler-option", "rate=5", "--batch-size", "7", *GLUE_EXTRAS],
        environ,
    )  # fmt: skip
    assert (process.source, process.ingest_id, process.settings.namespace) == (None, "ing_1", "ns")
    assert (process.options.handler, process.options.handler_options) == ("noop", {"rate": "5"})
    assert process.options.batch_size == 7


def test_a_malformed_handler_option_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="--handler-option 'endpoint' is not key=value"):
        ProcessArgs.parse(["--handler-option", "endpoint"], {})


def test_submit_reads_the_settings_the_job_will_use() -> None:
    settings = settings_in(
        ["--source", "f.csv", "--warehouse", "/w", "--spark-master", "local[1]"], {}
    )
    assert (settings.warehouse, settings.spark_master) == ("/w", "local[1]")


@pytest.mark.parametrize(
    ("script", "argv", "line"),
    [
        (
            "maintain_tables",
            ["--retention-days", "-1", *GLUE_EXTRAS],
            "maintain_tables: error: --retention-days must be 0 or more, got -1 days",
        ),
        (
            "process_records",
            ["--batch-size", "0"],
            "process_records: error: --batch-size, --max-attempts and --commit-every must be "
            "at least 1; got 0, 4, 1000000",
        ),
        (
            "ingest_landing",
            ["--source", "f.csv", *GLUE_EXTRAS],
            "ingest_landing: error: setting shuffle_partitions must be a whole number, got 'many'",
        ),
    ],
    ids=["maintain", "process", "ingest"],
)
def test_a_job_refuses_bad_arguments_with_one_line_and_exit_2_before_spark(
    script: str,
    argv: list[str],
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if script == "ingest_landing":  # a setting from the environment, read with the arguments
        monkeypatch.setenv("SLUICEWAY_SHUFFLE_PARTITIONS", "many")
    main: Callable[[list[str]], int] = load_job(script).main
    assert main(argv) == ExitCode.BAD_INPUT
    assert capsys.readouterr().err.splitlines()[-1] == line
