"""One writer per namespace, with real `sluiceway` processes on one warehouse.

A second `sluiceway process` while the first is paused inside a wave's commit: it exits 4
with one line naming the first, which then finishes; every record is processed (and sent to
the ledger) exactly once. `sluiceway maintain` while another run holds the lease: exit 4,
one line, no table touched.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.processing_records import REPOSITORY
from sluiceway.errors import ExitCode
from sluiceway.lease import lease_file, writer_lease
from sluiceway.maintenance import data_file_count
from sluiceway.processing.commit import AFTER_WAVE_WRITTEN
from sluiceway.processing.reconcile import reconcile
from sluiceway.settings import Settings
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES, TRANSACTIONS

pytestmark = pytest.mark.reliability

RECORDS = 200


@dataclass
class Run:
    """A `sluiceway` process whose output goes to files: a full pipe would stall it."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def finish(self, timeout: float = 300) -> tuple[str, str]:
        self.process.wait(timeout=timeout)
        return self.stdout.read_text(), self.stderr.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def sluiceway(
    settings: Settings, folder: Path, name: str, *arguments: str, failpoint: str = ""
) -> Run:
    """The real command in its own process, on the test's warehouse and namespace."""
    environ = {
        **os.environ,
        "SLUICEWAY_FAILPOINT": failpoint,
        "PYSPARK_PYTHON": sys.executable,
        "SLUICEWAY_NAMESPACE": settings.namespace,
        "SLUICEWAY_SPARK_MASTER": "local[1]",
        "SLUICEWAY_DRIVER_MEMORY": "1g",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",
    }
    stdout, stderr = folder / f"{name}.out", folder / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "sluiceway.cli", *arguments, "--warehouse", settings.warehouse],
            cwd=REPOSITORY,
            env=environ,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Run(process, stdout, stderr)


def human_lines(stderr: str) -> list[str]:
    """stderr without JSON log lines, progress lines and Spark's two start-up notes."""
    return [
        line
        for line in stderr.splitlines()
        if line
        and not line.startswith(("{", "... ", "Setting default log level", "To adjust logging"))
    ]


def busy_line(command: str, settings: Settings, holder_job: str, holder_pid: int) -> str:
    """The one line a refused writer prints, as a pattern (the holder's start time varies)."""
    before = (
        f"sluiceway {command}: error: namespace {settings.namespace} is being written by "
        f"{holder_job} (pid {holder_pid} on {socket.gethostname()}, since "
    )
    after = (
        f"), lease {lease_file(settings)}: {command} skipped, nothing was changed; "
        "run it again when that writer has finished"
    )
    return re.escape(before) + r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" + re.escape(after)


def test_a_second_process_run_during_a_wave_commit_exits_busy_and_changes_nothing(
    spark, isolated_settings, seed, ledger_server, tmp_path
) -> None:
    settings = isolated_settings
    ledger_server.state.faults = ("none",)
    ingest_id = seed(spark, settings, RECORDS, name="two-writers.csv", every_no_rate=0)
    arguments = (
        "process", "--ingest-id", ingest_id, "--handler", "http",
        "--handler-option", f"endpoint={ledger_server.url}", "--batch-size", "20",
    )  # fmt: skip
    marker = tmp_path / "first-run-paused"
    # The first run stops for real inside its (one) wave's commit, holding the lease.
    pause = f"pause@{AFTER_WAVE_WRITTEN}@{marker}"
    first = sluiceway(settings, tmp_path, "first", *arguments, failpoint=pause)
    second = None
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and first.process.poll() is None:
            assert time.monotonic() < deadline, "the first run never reached its wave commit"
            time.sleep(0.1)
        assert marker.exists(), first.finish()[1][-3000:]
        second = sluiceway(settings, tmp_path, "second", *arguments)
        _, second_err = second.finish()
        marker.unlink()  # the first run goes on
        first_out, first_err = first.finish()
    finally:
        for run in (first, second):
            if run is not None:
                run.kill()

    assert second.process.returncode == ExitCode.BUSY, second_err[-3000:]
    assert re.fullmatch(
        busy_line("process", settings, "process", first.process.pid),
        "\n".join(human_lines(second_err)),
    ), second_err[-3000:]
    assert first.process.returncode == ExitCode.OK, first_err[-3000:]
    assert ": reconciled" in first_out
    assert not lease_file(settings).exists()

    for table in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(table)}")
    [check] = reconcile(spark, settings, (ingest_id,))
    assert (check.accepted, check.processed, check.failed, check.duplicates) == (
        RECORDS, RECORDS, 0, 0,
    )  # fmt: skip
    assert len(ledger_server.state.effects) == RECORDS and ledger_server.state.applied_once()


def test_maintain_during_a_write_exits_busy_with_one_line(
    spark, isolated_settings, seed, tmp_path
) -> None:
    settings = isolated_settings
    for name in ("day-1.csv", "day-2.csv"):
        seed(spark, settings, 5, name=name, every_no_rate=0)
    files = data_file_count(spark, settings, TRANSACTIONS)

    with writer_lease(settings, "ingest"):
        maintain = sluiceway(settings, tmp_path, "maintain", "maintain", "--retain-last", "1")
        try:
            _, stderr = maintain.finish()
        finally:
            maintain.kill()

    assert maintain.process.returncode == ExitCode.BUSY, stderr[-3000:]
    assert re.fullmatch(
        busy_line("maintain", settings, "ingest", os.getpid()), "\n".join(human_lines(stderr))
    ), stderr[-3000:]
    assert files >= 2
    assert data_file_count(spark, settings, TRANSACTIONS) == files
