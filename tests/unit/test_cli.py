"""The `sluiceway` command: help everywhere, clear errors, machine-readable query output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.cli import build_parser, main

pytestmark = pytest.mark.unit


def subcommands() -> list[str]:
    parser = build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "usage: sluiceway " + command in capsys.readouterr().out


def test_the_core_subcommands_exist() -> None:
    assert {"generate", "ingest", "query", "contract", "demo"} <= set(subcommands())


def test_missing_java_is_a_clear_error_not_a_stack_trace(tmp_path: Path) -> None:
    landing = tmp_path / "x.csv"
    landing.write_text("x\n")
    environ = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    environ["PATH"] = str(Path(sys.executable).parent)  # the venv, but no java
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluiceway.cli",
            "ingest",
            str(landing),
            "--warehouse",
            str(tmp_path),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Java 17+ is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_generate_then_contract_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.csv"
    assert main(["generate", "--records", "100", "--out", str(out), "--defect-rate", "0.1"]) == 0
    assert "wrote " in capsys.readouterr().out and out.exists()
    assert json.loads(Path(f"{out}.manifest.json").read_text())["records"] == 100
    assert main(["contract"]) == 0
    assert "| `amount` | decimal(18,2) | yes |" in capsys.readouterr().out


def test_query_without_tables_names_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "SELECT * FROM transactions", "--warehouse", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "query failed" in err and str(tmp_path) in err and "sluiceway ingest" in err
