"""The crontab line and the systemd unit call `sluiceway upload` with options that exist."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from sluiceway.cli import build_parser

pytestmark = pytest.mark.unit

INFRA = Path(__file__).resolve().parents[2] / "infra"


def parsed_upload_arguments(command: str) -> dict[str, object]:
    words = shlex.split(command)
    arguments = words[words.index("upload") :]
    return vars(build_parser().parse_args(arguments))


def test_crontab_line_runs_the_uploader_as_its_own_user_with_valid_options() -> None:
    lines = (INFRA / "cron" / "sluiceway-upload.crontab").read_text().splitlines()
    jobs = [line for line in lines if line.startswith("*/")]
    assert len(jobs) == 1
    schedule_and_user, command = jobs[0].split("/opt/sluiceway/venv/bin/sluiceway", 1)
    assert schedule_and_user.split()[-1] == "sluiceway-upload"

    options = parsed_upload_arguments(command.split(">>")[0])

    assert options["command"] == "upload"
    assert options["watch_dir"] != options["archive_dir"]
    assert options["min_age"] == 120.0


def test_systemd_service_runs_the_uploader_with_valid_options_and_writable_folders() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(INFRA / "systemd" / "sluiceway-upload.service")
    exec_start = unit["Service"]["ExecStart"].replace("\\\n", " ").replace("\\", " ")

    options = parsed_upload_arguments(exec_start)

    writable = unit["Service"]["ReadWritePaths"].split()
    assert sorted(writable) == sorted([options["archive_dir"], options["watch_dir"]])
    assert unit["Service"]["Type"] == "oneshot"


def test_timer_starts_the_service_every_five_minutes() -> None:
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(INFRA / "systemd" / "sluiceway-upload.timer")
    assert timer["Timer"]["OnUnitInactiveSec"] == "5min"
    assert timer["Install"]["WantedBy"] == "timers.target"
