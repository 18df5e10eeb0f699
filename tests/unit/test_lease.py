"""The local writer lease, with real processes: refused, waited for, taken over when dead."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from sluiceway.errors import ExitCode
from sluiceway.lease import LeaseHolder, WriterBusyError, lease_file, writer_lease
from sluiceway.settings import Settings, load_settings

pytestmark = pytest.mark.unit

# A writer in its own process: takes the lease (waiting up to argv[3] s), says "held", holds it
# until a line arrives on stdin; a busy lease ends it as the CLI would, one line and exit 4.
WRITER = """
import sys, time
from sluiceway.errors import SluicewayError
from sluiceway.lease import writer_lease
from sluiceway.settings import load_settings

warehouse, job, wait, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
settings = load_settings(arguments={"warehouse": warehouse, "lease_wait_seconds": wait})
time.sleep(max(0.0, start_at - time.time()))
try:
    with writer_lease(settings, job):
        print("held", flush=True)
        sys.stdin.readline()
except SluicewayError as error:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code)
"""


def start_writer(
    warehouse: Path, job: str, wait: int = 0, start_at: float = 0.0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(warehouse), job, str(wait), str(start_at)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_held(writer: subprocess.Popen[str]) -> None:
    assert writer.stdout is not None
    line = writer.stdout.readline()
    assert line == "held\n", (line, writer.stderr.read() if writer.stderr else "")


def release(writer: subprocess.Popen[str]) -> None:
    _, stderr = writer.communicate("\n", timeout=30)
    assert writer.returncode == 0, stderr


@pytest.fixture
def lease_settings(tmp_path: Path) -> Settings:
    return load_settings(arguments={"warehouse": str(tmp_path / "warehouse")})


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lease(settings: Settings, **fields: object) -> LeaseHolder:
    holder = replace(LeaseHolder.mine("ingest"), **fields)
    path = lease_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(holder)))
    return holder


def test_a_second_writer_exits_busy_with_one_line_naming_the_holder(lease_settings) -> None:
    holder = start_writer(Path(lease_settings.warehouse), "ingest")
    wait_until_held(holder)
    lease = json.loads(lease_file(lease_settings).read_text())
    assert (lease["job"], lease["pid"], lease["host"]) == (
        "ingest", holder.pid, socket.gethostname(),
    )  # fmt: skip

    second = start_writer(Path(lease_settings.warehouse), "process")
    _, stderr = second.communicate(timeout=30)

    assert second.returncode == ExitCode.BUSY
    assert stderr.splitlines() == [
        f"error: namespace sluiceway is being written by ingest (pid {holder.pid} on "
        f"{socket.gethostname()}, since {lease['started_at']}), lease "
        f"{lease_file(lease_settings)}: process skipped, nothing was changed; run it again "
        "when that writer has finished"
    ]
    release(holder)
    assert not lease_file(lease_settings).exists()


@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_the_lease_of_a_sigkilled_holder_is_taken_over(lease_settings, reaped: bool) -> None:
    holder = start_writer(Path(lease_settings.warehouse), "ingest")
    wait_until_held(holder)
    os.kill(holder.pid, signal.SIGKILL)
    if reaped:
        holder.wait(timeout=30)
    else:  # killed but not yet waited for: the pid still exists, as a zombie
        while Path(f"/proc/{holder.pid}/stat").read_text().split(") ")[1][0] != "Z":
            time.sleep(0.01)
    assert json.loads(lease_file(lease_settings).read_text())["pid"] == holder.pid

    with writer_lease(lease_settings, "process") as me:
        assert json.loads(lease_file(lease_settings).read_text())["token"] == me.token
    assert not lease_file(lease_settings).exists()
    holder.wait(timeout=30)


def test_two_takers_of_a_dead_lease_never_both_win(lease_settings) -> None:
    warehouse = Path(lease_settings.warehouse)
    for _round in range(3):
        write_lease(lease_settings, pid=dead_pid())
        start_at = time.time() + 1.5  # every taker has started Python by then
        takers = [start_writer(warehouse, f"taker{i}", start_at=start_at) for i in range(6)]
        held = [taker for taker in takers if taker.stdout and taker.stdout.readline() == "held\n"]
        assert len(held) == 1
        for taker in takers:
            if taker is not held[0]:
                _, stderr = taker.communicate(timeout=30)
                assert taker.returncode == ExitCode.BUSY, stderr
                assert f"pid {held[0].pid} on" in stderr
        release(held[0])


def test_a_waiting_writer_reports_progress_and_gets_the_lease_on_release(
    lease_settings,
) -> None:
    holder = start_writer(Path(lease_settings.warehouse), "ingest")
    wait_until_held(holder)
    messages: list[str] = []
    threading.Timer(1.5, release, (holder,)).start()
    settings = replace(lease_settings, lease_wait_seconds=30)

    started = time.monotonic()
    with writer_lease(settings, "maintain", progress=messages.append) as me:
        waited = time.monotonic() - started
        assert json.loads(lease_file(settings).read_text())["token"] == me.token

    assert 1.0 < waited < 10
    assert messages[0].startswith("waiting up to 30 s more for the writer lease of namespace")
    assert f"held by ingest (pid {holder.pid} on" in messages[0]


def test_a_waiting_writer_gives_up_after_the_bounded_wait(lease_settings) -> None:
    write_lease(lease_settings, job="ingest", pid=os.getppid(), process_start="")
    settings = replace(lease_settings, lease_wait_seconds=2)
    started = time.monotonic()
    busy = pytest.raises(WriterBusyError, match=r"maintain skipped \(waited 2 s\)")
    with busy, writer_lease(settings, "maintain"):
        pytest.fail("the lease was held by a live process")
    assert 2 <= time.monotonic() - started < 5
    assert busy.excinfo.value.exit_code == ExitCode.BUSY


def test_release_never_removes_a_lease_that_is_no_longer_ours(lease_settings) -> None:
    with writer_lease(lease_settings, "process"):
        other = write_lease(lease_settings, token="another-run")
    assert json.loads(lease_file(lease_settings).read_text()) == asdict(other)


def test_a_holder_on_another_host_is_never_taken_over(lease_settings) -> None:
    write_lease(lease_settings, host="batch-node-7", pid=dead_pid())
    busy = pytest.raises(WriterBusyError, match=r"ingest \(pid \d+ on batch-node-7, since")
    with busy, writer_lease(lease_settings, "process"):
        pytest.fail("a lease of another host was taken over")


def test_a_reused_pid_is_not_mistaken_for_the_holder(lease_settings) -> None:
    # The pid is alive (this very process), but started at another time than the holder.
    write_lease(lease_settings, pid=os.getpid(), process_start="1")
    with writer_lease(lease_settings, "process") as me:
        assert json.loads(lease_file(lease_settings).read_text())["token"] == me.token


def test_an_unreadable_lease_file_is_reported_not_removed(lease_settings) -> None:
    path = lease_file(lease_settings)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    busy = pytest.raises(WriterBusyError, match=r"unreadable lease file .*remove the lease if no")
    with busy, writer_lease(lease_settings, "process"):
        pytest.fail("an unreadable lease was ignored")
    assert path.read_text() == "{not json"


@pytest.mark.parametrize("job", ["ingest", "run", "process", "redrive", "maintain"])
def test_a_busy_writer_exits_before_spark_and_the_scan_start(
    lease_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job: str
) -> None:
    """`pipeline._prepare`, which every writer command and job runs first, refuses at once;
    Spark's start (`pipeline._session`) is replaced by a failure, so reaching it fails."""
    from sluiceway import pipeline
    from sluiceway.job_arguments import IngestArgs

    def spark_started(*_args: object) -> None:
        raise AssertionError("Spark was started by a writer that was going to be refused")

    monkeypatch.setattr(pipeline, "_session", spark_started)
    landing = tmp_path / "day.csv"
    landing.write_text("not read: the run is refused before its scan\n")
    holder = start_writer(Path(lease_settings.warehouse), "ingest")
    wait_until_held(holder)
    try:
        with pytest.raises(WriterBusyError, match=f"being written by ingest .* {job} skipped"):
            if job in ("ingest", "run"):
                pipeline.start_spark_reading(
                    job, IngestArgs(str(landing), None, None, lease_settings)
                )
            else:
                pipeline.start_spark(job, lease_settings)
    finally:
        release(holder)


def test_the_probe_leaves_a_free_lease_free_and_a_waiting_writer_is_not_refused(
    lease_settings,
) -> None:
    from sluiceway.lease import refuse_if_busy

    refuse_if_busy(lease_settings, "ingest")
    assert not lease_file(lease_settings).exists()
    holder = start_writer(Path(lease_settings.warehouse), "ingest")
    wait_until_held(holder)
    try:
        refuse_if_busy(replace(lease_settings, lease_wait_seconds=30), "process")
        with pytest.raises(WriterBusyError):
            refuse_if_busy(lease_settings, "process")
    finally:
        release(holder)
