"""Errors a person can read: one line naming the problem and a documented exit code.

Each case runs the real `sluiceway` command in its own process; all of them are refused
before Spark starts, so none of them costs a JVM.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.cli import exit_codes_epilog
from sluiceway.errors import ExitCode
from sluiceway.tables import DEFINITIONS

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def sluiceway(*arguments: str, as_user: bool = False) -> subprocess.CompletedProcess[str]:
    return run_python(
        "from sluiceway.cli import main; raise SystemExit(main())", *arguments, as_user=as_user
    )


def run_python(
    code: str, *arguments: str, as_user: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=drop_permission_override if as_user and os.geteuid() == 0 else None,
    )


def drop_permission_override() -> None:
    """Make root obey file permissions, as any operator account does (Linux capabilities)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def human_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines: what a person reads."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert done.returncode == code, done.stderr
    assert human_lines(done.stderr) == [line]
    assert "Traceback" not in "\n".join(human_lines(done.stderr))


def test_a_warehouse_that_is_a_file(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.write_text("not a folder")
    done = sluiceway("process", "--warehouse", str(warehouse))
    assert_one_line(
        done,
        ExitCode.BAD_INPUT,
        f"sluiceway process: error: warehouse {warehouse} is a file, not a folder; point "
        "--warehouse (or SLUICEWAY_WAREHOUSE) at a folder",
    )


def test_a_warehouse_inside_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = sluiceway("maintain", "--warehouse", str(tmp_path / "file" / "warehouse"))
    assert done.returncode == ExitCode.BAD_INPUT
    assert human_lines(done.stderr) == [
        f"sluiceway maintain: error: warehouse {tmp_path}/file/warehouse is inside "
        f"{tmp_path}/file, which is a file, not a folder; point --warehouse (or "
        "SLUICEWAY_WAREHOUSE) at a folder"
    ]


def test_a_quote_in_the_warehouse_path(tmp_path: Path) -> None:
    warehouse = tmp_path / "partner's warehouse"
    for command in ("ingest", "query"):
        arguments = ("landing.csv",) if command == "ingest" else ("SELECT 1",)
        done = sluiceway(command, *arguments, "--warehouse", str(warehouse))
        assert_one_line(
            done,
            ExitCode.BAD_INPUT,
            f'sluiceway {command}: error: warehouse path {warehouse} contains "\'"; table '
            "paths are quoted inside SQL (DuckDB, Athena), so choose a warehouse path without "
            "quotes or backslashes",
        )
    assert not warehouse.exists()


def test_a_read_only_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    warehouse.chmod(0o555)
    done = sluiceway("process", "--warehouse", str(warehouse), as_user=True)
    assert_one_line(
        done,
        ExitCode.BAD_INPUT,
        f"sluiceway process: error: warehouse {warehouse} is not writable (Permission denied); "
        "use a folder this user can use, or fix its permissions or mount",
    )


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (("--retain-last", "0"), "--retain-last must be at least 1 (the current snapshot), got 0"),
        (
            ("--orphan-age-days", "0.5"),
            "--orphan-age-days must be at least 1 day, got 0.5 days: younger files may "
            "belong to a write in progress",
        ),
        (("--retention-days", "-1"), "--retention-days must be 0 or more, got -1 days"),
        (
            ("--retention-days", "1e12"),
            "--retention-days 1e+12 is out of range (Python int too large to convert to C int)",
        ),
        (
            ("--table", "transaction"),
            f"--table transaction is not a sluiceway table; choose from {', '.join(DEFINITIONS)}",
        ),
    ],
    ids=["retain-last", "orphan-age", "retention", "overflow", "table"],
)
def test_invalid_maintain_options(tmp_path: Path, option: tuple[str, str], problem: str) -> None:
    done = sluiceway("maintain", *option, "--warehouse", str(tmp_path))
    assert_one_line(done, ExitCode.BAD_INPUT, f"sluiceway maintain: error: {problem}")


def test_an_unexpected_error_is_one_line_and_its_trace_goes_to_the_json_log() -> None:
    broken = (
        "import sluiceway.contract as contract\n"
        "def contract_markdown(*_feed):\n"
        "    return {}['a key nobody wrote']\n"
        "contract.contract_markdown = contract_markdown\n"
        "from sluiceway.cli import main\n"
        "raise SystemExit(main())\n"
    )
    done = run_python(broken, "contract")
    assert_one_line(
        done,
        ExitCode.UNEXPECTED,
        "sluiceway contract: unexpected error: KeyError: 'a key nobody wrote'; details in the "
        "JSON log above",
    )
    [log] = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert log["level"] == "error" and log["job"] == "contract"
    assert log["error"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'a key nobody wrote'" in log["error"]


def test_every_exit_code_is_listed_in_help_and_readme() -> None:
    done = sluiceway("--help")
    readme = (REPOSITORY / "README.md").read_text()
    assert exit_codes_epilog() in done.stdout
    for code in ExitCode:
        assert f"  {code.value}  {code.name} " in done.stdout
        assert f"| {code.value} | `{code.name}` |" in readme
