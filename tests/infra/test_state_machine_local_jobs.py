"""The local task runner really runs job subprocesses, following the deployed definition.

Tiny stand-in job scripts (written by the test into a temporary jobs/ folder) record the
arguments they were started with and exit with the code the test chooses per profile, so
the mapping from Glue / Batch task to a local process is exercised for real.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sluiceway.orchestration import LocalTaskRunner, TaskCall, TaskFailed, run_pipeline
from sluiceway.orchestration.local_tasks import GLUE_JOB
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

JOB = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    arguments = sys.argv[1:]
    profile = arguments[arguments.index("--profile") + 1]
    with open("calls.jsonl", "a") as calls:
        calls.write(json.dumps({"script": Path(__file__).name, "argv": arguments}) + "\\n")
    exits = json.loads(Path("exits.json").read_text())
    time.sleep(exits.get("sleep", 0))
    sys.exit(exits.get(f"{Path(__file__).name}:{profile}", 0))
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "jobs").mkdir()
    for name in ("ingest_landing.py", "process_records.py"):
        (tmp_path / "jobs" / name).write_text(JOB)
    return tmp_path


def calls(workdir: Path) -> list[dict[str, object]]:
    lines = (workdir / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def test_failed_local_ingest_falls_back_to_the_batch_command_and_then_processes(
    workdir: Path,
) -> None:
    (workdir / "exits.json").write_text(json.dumps({"ingest_landing.py:local": 3}))
    settings = load_settings(arguments={"warehouse": str(workdir / "wh"), "namespace": "ns"})
    execution, runner = run_pipeline(settings, "landing/a.csv", workdir=workdir)
    assert execution.status == "SUCCEEDED", execution.cause
    seen = calls(workdir)
    profiles = [(call["script"], _option(call["argv"], "--profile")) for call in seen]
    assert profiles == [
        ("ingest_landing.py", "local"),
        ("ingest_landing.py", "batch"),
        ("process_records.py", "local"),
    ]
    glue_run, batch_run, _ = (call["argv"] for call in seen)
    source = ["--source", "landing/a.csv", "--source-version", ""]
    common = ["--warehouse", str(workdir / "wh"), "--namespace", "ns"]
    assert glue_run == [*source, "--profile", "local", *common]
    assert batch_run == [*source, "--profile", "batch", *common]
    assert [metric["MetricName"] for metric in runner.metrics] == ["FallbackUsed"]
    assert runner.notifications == []


def test_exit_codes_of_both_runs_reach_the_failure_notification(workdir: Path) -> None:
    exits = {"process_records.py:local": 1, "process_records.py:batch": 2}
    (workdir / "exits.json").write_text(json.dumps(exits))
    settings = load_settings(arguments={"warehouse": str(workdir / "wh")})
    execution, runner = run_pipeline(settings, "landing/a.csv", workdir=workdir)
    assert execution.status == "FAILED"
    assert json.loads(execution.cause)["ExitCode"] == 2
    (notification,) = runner.notifications
    assert "landing/a.csv" in notification["Message"]
    assert '"ExitCode": 2' in notification["Message"]


def test_a_job_that_outlives_its_timeout_is_states_timeout(workdir: Path) -> None:
    (workdir / "exits.json").write_text(json.dumps({"sleep": 5}))
    runner = LocalTaskRunner(workdir=workdir, settings=load_settings())
    call = TaskCall("IngestOnGlue", GLUE_JOB, {"JobName": "sluiceway-ingest"}, 1, 1)
    with pytest.raises(TaskFailed) as failure:
        runner(call)
    assert failure.value.error == "States.Timeout"
