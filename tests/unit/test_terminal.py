"""A terminal that reads like a tool: the progress line, where log lines go, Spark's log.

tests/integration/test_terminal_sessions.py runs the real command on a pseudo-terminal; these check
the pieces without Spark.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluiceway import class_archive
from sluiceway.cli import _log_output, _unexpected, build_parser
from sluiceway.errors import ExitCode
from sluiceway.job_arguments import IngestArgs
from sluiceway.logs import CLEAR_LINE, configure_logging, get_logger, log_event
from sluiceway.settings import load_settings
from sluiceway.spark import LOG4J_CONF, LOG4J_FILE_CONF, spark_conf, spark_log_options
from sluiceway.terminal import Progress

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_on_a_terminal_is_one_line_redrawn_in_place() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, in_place=True, clock=clock)

    progress("starting Spark")
    clock.now += 65
    progress("chunks 3/8 done after 60 s (~120,000 lines/s)")
    progress.finish()

    drawn = stream.getvalue()
    assert "\n" not in drawn and drawn.startswith(CLEAR_LINE) and drawn.endswith(CLEAR_LINE)
    frames = [frame for frame in drawn.split(CLEAR_LINE) if frame]
    assert frames[0] == "[0:00] starting Spark"
    assert frames[-1] == "[1:05] chunks 3/8 done after 60 s (~120,000 lines/s)"


def test_a_progress_line_never_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    progress = Progress(io.StringIO(), in_place=True, clock=Clock())
    progress.message = "scanned /data/landing/a-very-long-file-name.csv: 1.2 GB"
    assert progress.line() == "[0:00] scanned /data/landing/a-very-lo…"
    assert len(progress.line()) < 40


def test_progress_elsewhere_is_plain_lines_as_a_log_reader_expects() -> None:
    stream = io.StringIO()
    progress = Progress(stream, in_place=False)
    progress("starting Spark")
    progress("chunks 1/2 done after 5 s")
    progress.finish()
    assert stream.getvalue() == "... starting Spark\n... chunks 1/2 done after 5 s\n"


def demo_args(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(["demo", *options])


def test_a_terminal_gets_text_and_a_log_file_of_its_own_elsewhere_json() -> None:
    args = demo_args()
    log_format, log_file = _log_output(args, {}, terminal=True)
    assert log_format == "text"
    assert Path(log_file).parent == Path(tempfile.gettempdir()) / "sluiceway-logs"
    assert Path(log_file).name.startswith("demo-") and log_file.endswith(".jsonl")
    # Written back into the options, so the command's settings carry them to start_spark.
    settings = load_settings(arguments={"log_format": args.log_format, "log_file": args.log_file})
    assert (settings.log_format, settings.log_file) == ("text", log_file)

    assert _log_output(demo_args(), {}, terminal=False) == ("json", "")
    assert _log_output(demo_args("--log-format", "json"), {}, terminal=True) == ("json", "")
    assert _log_output(demo_args(), {"SLUICEWAY_LOG_FORMAT": "json"}, terminal=True) == (
        "json",
        "",
    )
    chosen = demo_args("--log-file", "/var/log/demo.jsonl")
    assert _log_output(chosen, {}, terminal=True) == ("text", "/var/log/demo.jsonl")


def test_jobs_log_json_unless_told_otherwise() -> None:
    assert IngestArgs.parse(["--source", "s3://b/k.csv"], {}).settings.log_format == "json"
    told = IngestArgs.parse(["--source", "s3://b/k.csv", "--log-format", "text"], {})
    assert told.settings.log_format == "text"
    assert load_settings(environ={"SLUICEWAY_LOG_FORMAT": "text"}).log_format == "text"


@pytest.fixture
def sluiceway_logger() -> Iterator[None]:
    yield
    logging.getLogger("sluiceway").handlers.clear()
    logging.getLogger("py.warnings").handlers.clear()
    logging.captureWarnings(False)


def test_with_a_log_file_stderr_shows_warnings_and_the_file_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sluiceway_logger: None
) -> None:
    log_file = tmp_path / "run.jsonl"
    configure_logging("demo", "INFO", log_format="text", log_file=str(log_file))
    logger = get_logger("test")

    log_event(logger, "writer lease taken", lease="x")
    logger.warning("account DE89000000037000000803 looks odd")
    warnings.warn("a pyspark deprecation", UserWarning, stacklevel=1)

    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING account ******************0803 looks odd")
    assert len(line.split(" ")[0]) == len("12:00:00")
    logged = [json.loads(entry) for entry in log_file.read_text().splitlines()]
    assert [entry["msg"] for entry in logged][:2] == [
        "writer lease taken",
        "account ******************0803 looks odd",
    ]
    assert "a pyspark deprecation" in logged[2]["msg"] and logged[2]["logger"] == "py.warnings"


def test_at_debug_stderr_shows_every_line_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sluiceway_logger: None
) -> None:
    configure_logging("demo", "DEBUG", log_format="text", log_file=str(tmp_path / "run.jsonl"))
    log_event(get_logger("test"), "writer lease taken")
    assert capsys.readouterr().err.rstrip().endswith(" INFO    writer lease taken")


def test_spark_logs_to_a_file_beside_the_log_file_and_its_defaults_at_debug(
    tmp_path: Path,
) -> None:
    plain = load_settings(arguments={"warehouse": str(tmp_path)})
    assert spark_log_options(plain) == f"-Dlog4j2.configurationFile={LOG4J_CONF}"

    logged = load_settings(arguments={"warehouse": str(tmp_path), "log_file": "/l/demo-1.jsonl"})
    assert spark_log_options(logged) == (
        f"-Dlog4j2.configurationFile={LOG4J_FILE_CONF} -Dsluiceway.spark.log=/l/demo-1.spark.log"
    )
    # The driver's options: where its log goes, then the class archive's (when there is one).
    archive = class_archive.java_options()
    assert spark_conf(logged)["spark.driver.extraJavaOptions"] == (
        f"{spark_log_options(logged)} {archive}".strip()
    )

    debug = load_settings(arguments={"warehouse": str(tmp_path), "log_level": "DEBUG"})
    assert spark_conf(debug).get("spark.driver.extraJavaOptions", "") == archive


def test_an_unexpected_error_on_a_terminal_names_the_log_file_with_its_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sluiceway_logger: None
) -> None:
    log_file = tmp_path / "contract.jsonl"
    try:
        {}["a key nobody wrote"]
    except KeyError as error:
        code = _unexpected("contract", error, "text", str(log_file))

    assert code == ExitCode.UNEXPECTED
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sluiceway contract: unexpected error: KeyError: 'a key nobody wrote'; "
        f"details in {log_file}"
    )
    [logged] = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert logged["error"].startswith("Traceback (most recent call last):")
