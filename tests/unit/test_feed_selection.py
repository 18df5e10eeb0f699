"""`--feed` on the commands and jobs, the feed in a landing key, and the steps that handle the
transactions feed only refusing another one clearly."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.cli import build_parser
from sluiceway.errors import ExitCode
from sluiceway.feeds import feed_from_key, feed_key_prefix, load_feed
from sluiceway.job_arguments import JOBS, job_parser
from sluiceway.upload.transfer import object_key

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURE_FEEDS = str(REPOSITORY / "tests" / "fixtures" / "feeds")
FEED_COMMANDS = (
    "contract",
    "check",
    "ingest",
    "upload",
    "stream",
    "process",
    "run",
    "redrive",
    "maintain",
    "query",
    "report",
)


def sluiceway(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from sluiceway.cli import main; raise SystemExit(main())",
            *arguments,
        ],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_help_describes_feeds() -> None:
    help_text = build_parser().format_help()
    assert "Each partner feed is a versioned contract file (docs/feeds.md)" in help_text
    assert "`sluiceway contract --feed NAME` prints it" in help_text


def test_every_command_that_reads_a_feed_takes_feed_and_feeds_dir() -> None:
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for command in FEED_COMMANDS:
        assert {"--feed", "--feeds-dir"} <= options_of(commands.choices[command]), command


@pytest.mark.parametrize("job", sorted(JOBS))
def test_every_job_takes_feed(job: str) -> None:
    assert "--feed" in options_of(job_parser(job))


@pytest.mark.parametrize(
    ("key", "prefix", "feed"),
    [
        ("landing/payouts/2026-11-25.csv", "landing", "payouts"),
        ("landing/payouts/2026-11-25.csv", "landing/", "payouts"),
        ("landing/2026-11-25.csv", "landing", "transactions"),
        ("payouts/2026-11-25.csv", "", "payouts"),
        ("2026-11-25.csv", "", "transactions"),
        ("landing/partner-a/payouts/x.csv", "landing/partner-a", "payouts"),
    ],
)
def test_a_landing_keys_folder_after_the_prefix_names_its_feed(
    key: str, prefix: str, feed: str
) -> None:
    assert feed_from_key(key, prefix) == feed


def test_upload_with_feed_puts_the_file_where_the_key_names_that_feed() -> None:
    key = object_key(feed_key_prefix("landing", "payouts"), "2026-11-25.csv")
    assert key == "landing/payouts/2026-11-25.csv"
    assert feed_from_key(key, "landing") == "payouts"
    assert object_key(feed_key_prefix("landing", None), "x.csv") == "landing/x.csv"


def test_contract_prints_the_selected_feed() -> None:
    done = sluiceway("contract", "--feed", "payouts", "--feeds-dir", FIXTURE_FEEDS)
    assert done.returncode == 0, done.stderr
    payouts = load_feed("payouts", FIXTURE_FEEDS)
    assert done.stdout.startswith(f"feed payouts (rule_version {payouts.rule_version})")
    assert "namespace payouts; key payout_id" in done.stdout
    assert "severity: many_items is warn" in done.stdout
    assert "| `net_amount` | decimal(14,2) | yes |" in done.stdout
    assert "| `negative_payout` | a payout is never negative |" in done.stdout


def test_check_reads_a_file_with_the_selected_feeds_contract(tmp_path: Path) -> None:
    payouts = load_feed("payouts", FIXTURE_FEEDS)
    landing = tmp_path / "payouts.csv"
    landing.write_text(
        payouts.header_line + "\nP1,Shop,1.00,EUR,2026-11-25T10:00:00Z,2,sepa\n"
        "P2,Shop,1.00,EUR,2026-11-25T10:00:00Z,2,cash\n"
    )
    chosen = sluiceway(
        "check", str(landing), "--format", "json", "--feed", "payouts", "--feeds-dir", FIXTURE_FEEDS
    )
    # The payouts feed marks an unknown method `fail_file`: its rules read the file, and its
    # file policy refuses it (exit 2), naming the line and the rule.
    assert chosen.returncode == 2, chosen.stderr
    report = json.loads(chosen.stdout)
    assert (report["accepted"], report["rejected_by_reason"]) == (1, {"unknown_method": 1})
    assert report["failed_rule"] == "fail_file"
    assert "line 3 was rejected for unknown_method" in report["problem"]
    default = sluiceway("check", str(landing), "--format", "json")
    assert json.loads(default.stdout)["failed_rule"] == "wrong header"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (["process"], "processing handles the transactions feed only, not 'payouts'"),
        (["redrive"], "processing handles the transactions feed only, not 'payouts'"),
        (["run", "landing.csv"], "processing handles the transactions feed only, not 'payouts'"),
        (
            ["stream", "--topic", "t", "--bootstrap-servers", "127.0.0.1:9"],
            "processing handles the transactions feed only, not 'payouts'",
        ),
    ],
)
def test_steps_for_the_transactions_feed_refuse_another_before_spark_starts(
    tmp_path: Path, command: list[str], problem: str
) -> None:
    done = sluiceway(
        *command, "--feed", "payouts", "--feeds-dir", FIXTURE_FEEDS, "--warehouse", str(tmp_path)
    )
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert problem in done.stderr
    assert not (tmp_path / "payouts").exists()
