"""`spark-submit jobs/<job>.py` as a new user runs it: the real binary from the venv.

spark-submit starts the driver JVM before the job's Python runs, so the Iceberg runtime must
be on its command line. Plain `spark-submit` without it stops at once with the exact `--jars`
to pass; with that `--jars`, and through `sluiceway submit`, every job runs on a tiny file.
One warehouse is shared in module order (ingest, then process, then maintain) to start as few
JVMs as possible.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluiceway.spark import JOBS_DIR, iceberg_runtime_jar

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
SPARK_SUBMIT = str(VENV_BIN / "spark-submit")
TIMEOUT = 300


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("spark-submit")
    # Seed 6: its 50 records use every currency, so the run does not depend on how a currency
    # that is absent from a file is reconciled (not what this module tests).
    generate = [str(VENV_BIN / "sluiceway"), "generate", "--records", "50", "--seed", "6"]
    generate += ["--out", "land.csv"]
    subprocess.run(generate, cwd=folder, check=True, capture_output=True, timeout=120)
    yield folder


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """As a user with the venv activated: its bin first on PATH, no sluiceway settings set."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SLUICEWAY_")}
    environ |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{environ.get('PATH', '')}",
        # Small and quick: 50 records need neither a big heap nor many shuffle tasks.
        "SLUICEWAY_DRIVER_MEMORY": "1g",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",
        "SLUICEWAY_SPARK_MASTER": "local[2]",
    }
    return subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def last_json(output: str, kind: type) -> Any:
    """The job's own result line: the last JSON line of that kind (logs are JSON objects too)."""
    for line in reversed(output.splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, kind) and (kind is list or "reconciled" in value):
            return value
    raise AssertionError(f"no result line in {output[-2000:]}")


def job_arguments(folder: Path) -> list[str]:
    return ["--source", str(folder / "land.csv"), "--warehouse", str(folder / "warehouse")]


def test_plain_spark_submit_without_the_iceberg_jar_says_which_jars_to_pass(
    workspace: Path,
) -> None:
    script = str(JOBS_DIR / "ingest_landing.py")
    finished = run([SPARK_SUBMIT, script, *job_arguments(workspace)], workspace)
    # spark-submit's PythonRunner merges the job's stderr into its stdout.
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2, output[-2000:]
    assert f"--jars {iceberg_runtime_jar()}" in output
    assert "sluiceway submit" in output
    assert "ClassNotFoundException" not in output
    assert not (workspace / "warehouse" / "sluiceway").exists(), "nothing was written"


def test_ingest_runs_with_the_jars_the_message_names(workspace: Path) -> None:
    script = str(JOBS_DIR / "ingest_landing.py")
    command = [SPARK_SUBMIT, "--jars", str(iceberg_runtime_jar()), script]
    finished = run([*command, *job_arguments(workspace)], workspace)
    assert finished.returncode == 0, (finished.stdout + finished.stderr)[-3000:]
    assert ": completed" in finished.stdout, finished.stdout
    assert (workspace / "warehouse" / "sluiceway" / "transactions" / "metadata").is_dir()


def test_process_and_maintain_run_through_sluiceway_submit(workspace: Path) -> None:
    submit = [str(VENV_BIN / "sluiceway"), "submit"]
    process = run([*submit, "process_records", "--", *job_arguments(workspace)], workspace)
    assert process.returncode == 0, (process.stdout + process.stderr)[-3000:]
    summary = last_json(process.stdout, dict)
    assert summary["reconciled"] is True
    assert summary["records_ok"] + summary["records_failed"] == 50

    warehouse = ["--warehouse", str(workspace / "warehouse")]
    maintain = run([*submit, "maintain_tables", "--", *warehouse], workspace)
    assert maintain.returncode == 0, (maintain.stdout + maintain.stderr)[-3000:]
    tables = {result["table"] for result in last_json(maintain.stdout, list)}
    assert "sluiceway.transactions" in tables or "transactions" in tables, tables
