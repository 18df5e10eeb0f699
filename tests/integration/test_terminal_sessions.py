"""What a person sees: the real `sluiceway demo` (real Spark) on a pseudo-terminal and piped.

On a terminal: one progress line redrawn in place, one summary, no JSON, none of Spark's own
lines; the JSON log and Spark's log go to files named at the end. Piped: JSON log lines and
`... ` progress lines only. `--log-level debug` brings every log line and Spark's own back to
a terminal, where processing shows Spark's tasks. Three Spark starts, one warehouse.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
RECORDS = 2000
# Lines of Spark's own: its log4j pattern (`WARN NativeCodeLoader: ...`) and its banner.
SPARK_LINE = re.compile(r"\b(WARN|INFO) [A-Za-z0-9$.]+: |Setting default log level")
ERASE = "\r\x1b[K"


def environ(tmp_path: Path) -> dict[str, str]:
    """A small Spark; TMPDIR under the test so the run's default log file lands there."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEWAY_LOG_")}
    return {
        **base,
        "TMPDIR": str(tmp_path),
        "SLUICEWAY_DRIVER_MEMORY": "1g",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",
        "SLUICEWAY_SPARK_MASTER": "local[2]",
    }


def demo(tmp_path: Path, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "sluiceway.cli", "demo", "--records", str(RECORDS),
        "--warehouse", str(tmp_path / "warehouse"), "--data-dir", str(tmp_path / "data"),
        *options,
    ]  # fmt: skip


def on_terminal(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `command` with stdin, stdout and stderr on a pseudo-terminal 200 columns wide."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        command, stdin=terminal, stdout=terminal, stderr=terminal, env=env, cwd=REPOSITORY
    )
    os.close(terminal)
    output = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    return process.wait(timeout=600), output.decode("utf-8", "replace").replace("\r\n", "\n")


def screen_lines(output: str) -> list[str]:
    """The lines left on the screen: what follows the last erase of each line."""
    return [line.rsplit(ERASE, 1)[-1] for line in output.split("\n")]


def test_a_terminal_shows_progress_and_one_summary_and_pipes_get_json(tmp_path: Path) -> None:
    env = environ(tmp_path)

    code, output = on_terminal(demo(tmp_path), env)

    assert code == 0, output[-3000:]
    assert not [line for line in screen_lines(output) if line.startswith("{")]
    assert not SPARK_LINE.search(output), output[-3000:]
    # One progress line, redrawn in place (clock and step), never a line of its own.
    assert re.search(r"\r\x1b\[K\[0:\d\d\] starting Spark \(local profile", output)
    assert re.search(r"\r\x1b\[K\[\d+:\d\d\] audited and published", output)
    assert not [line for line in screen_lines(output) if line.startswith(("[0:", "... "))]
    # One summary: the counts, the rejects by reason, the seconds, the warehouse, what next.
    screen = "\n".join(screen_lines(output))
    for figure in ("records accepted", "records rejected"):
        assert len(re.findall(rf"^  {figure} +[\d,]+$", screen, re.MULTILINE)) == 1, screen
    assert len(re.findall(r"^ingest ing_\w+: completed", screen, re.MULTILINE)) == 1, screen
    assert re.search(r"^    bad_amount_format +\d+$", screen, re.MULTILINE)
    assert re.search(r"^  took \d+\.\d s ", screen, re.MULTILINE)
    assert f"warehouse  {tmp_path / 'warehouse'} (namespace sluiceway)" in screen
    assert f"next       sluiceway process --warehouse {tmp_path / 'warehouse'}" in screen
    # Nothing lost: the JSON log and Spark's own log are in the files the last line names.
    [named] = re.findall(r"^log +(\S+) and (\S+)$", screen, re.MULTILINE)
    log_file, spark_log = map(Path, named)
    assert log_file.parent == tmp_path / "sluiceway-logs"
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(entry["msg"].startswith("ingested ") for entry in logged)
    assert SPARK_LINE.search(spark_log.read_text())

    piped = subprocess.run(
        demo(tmp_path), env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=600
    )

    assert piped.returncode == 0, piped.stderr[-3000:]
    for line in piped.stderr.splitlines():
        assert line.startswith("... ") or json.loads(line)["job"] == "ingest", line
    assert any(line.startswith("{") for line in piped.stderr.splitlines())
    assert not SPARK_LINE.search(piped.stdout + piped.stderr)
    assert "already ingested" in piped.stdout and "{" not in piped.stdout
    assert sorted((tmp_path / "sluiceway-logs").iterdir()) == sorted([log_file, spark_log])

    process = [
        sys.executable, "-m", "sluiceway.cli", "process", "--handler", "noop",
        "--warehouse", str(tmp_path / "warehouse"), "--log-level", "debug",
    ]  # fmt: skip
    code, output = on_terminal(process, env)

    assert code == 0, output[-3000:]
    assert SPARK_LINE.search(output), "DEBUG brings Spark's own lines back"
    assert re.search(r"\d\d:\d\d:\d\d INFO    writer lease taken", output), "and every log line"
    assert re.search(r"\[\d+:\d\d\] processing: \d+/\d+ Spark tasks done after \d+ s", output)
    assert re.search(r"^  processed ok +[\d,]+$", "\n".join(screen_lines(output)), re.MULTILINE)
