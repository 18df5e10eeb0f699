"""The local task runner really runs job subprocesses, following the deployed definition.

Tiny stand-in job scripts (written by the test into a temporary jobs/ folder) record the
arguments they were started with and exit with the code the test chooses per profile, through
the same `record_outcome` the real jobs use, so the mapping from Glue / Batch task to a local
process and the outcome file the definition reads back are exercised for real.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sluiceway.cli import main
from sluiceway.orchestration import (
    PIPELINE_DEFINITION,
    LocalTaskRunner,
    TaskCall,
    TaskFailed,
    local_substitutions,
    run_pipeline,
    run_state_machine,
)
from sluiceway.orchestration.asl import Execution
from sluiceway.orchestration.local_tasks import GLUE_JOB
from sluiceway.orchestration.pipeline import REPOSITORY
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

# exits.json: {"<script>:<profile>": code or [code per run], "crash": [...], "sleep": s}.
# A script:profile listed under "crash" dies without writing its outcome.
JOB = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from sluiceway.orchestration.outcome import record_outcome
    arguments = sys.argv[1:]
    profile = arguments[arguments.index("--profile") + 1]
    me = f"{Path(__file__).name}:{profile}"
    calls = Path("calls.jsonl")
    earlier = calls.read_text().count(f'"{me}"') if calls.exists() else 0
    with calls.open("a") as out:
        out.write(json.dumps({"script": Path(__file__).name, "me": me, "argv": arguments}) + "\\n")
    exits = json.loads(Path("exits.json").read_text())
    time.sleep(exits.get("sleep", 0))
    code = exits.get(me, 0)
    code = code[min(earlier, len(code) - 1)] if isinstance(code, list) else code
    if me in exits.get("crash", []):
        os._exit(code)
    sys.exit(record_outcome(code, arguments))
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


def run(
    workdir: Path, exits: dict[str, object]
) -> tuple[Execution, LocalTaskRunner, list[str], list[float]]:
    (workdir / "exits.json").write_text(json.dumps(exits))
    settings = load_settings(arguments={"warehouse": str(workdir / "wh"), "namespace": "ns"})
    waits: list[float] = []
    execution, runner = run_pipeline(settings, "landing/a.csv", workdir=workdir, sleep=waits.append)
    return execution, runner, [str(call["me"]) for call in calls(workdir)], waits


def test_a_job_that_dies_without_an_outcome_falls_back_to_the_batch_command(
    workdir: Path,
) -> None:
    exits = {"ingest_landing.py:local": 1, "crash": ["ingest_landing.py:local"]}
    execution, runner, runs, _ = run(workdir, exits)
    assert execution.status == "SUCCEEDED", execution.cause
    assert runs == [
        "ingest_landing.py:local",
        "ingest_landing.py:batch",
        "process_records.py:local",
    ]
    glue_run, batch_run, _ = (call["argv"] for call in calls(workdir))
    outcome = _option(glue_run, "--outcome-uri")
    assert outcome.startswith(str((workdir / "wh").resolve() / "_outcomes" / "local-"))
    source = ["--source", "landing/a.csv", "--source-version", "", "--outcome-uri", outcome]
    source += ["--feed", "transactions"]
    common = ["--warehouse", str(workdir / "wh"), "--namespace", "ns"]
    assert glue_run == [*source, "--profile", "local", *common]
    assert batch_run == [*source, "--profile", "batch", *common]
    # The Batch run succeeded and wrote the outcome the crashed run could not.
    assert json.loads(Path(outcome).read_text()) == {
        "exit_code": 0,
        "name": "OK",
        "kind": "succeeded",
    }
    assert [metric["MetricName"] for metric in runner.metrics] == ["FallbackUsed"]
    assert runner.notifications == []


def test_statemachine_run_of_another_feed_ingests_it_with_its_file_and_runs_no_process_job(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "exits.json").write_text("{}")
    feeds = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
    command = ["statemachine", "run", "landing/payouts/a.csv", "--workdir", str(workdir)]
    command += ["--warehouse", str(workdir / "wh"), "--feed", "payouts", "--feeds-dir", str(feeds)]
    assert main([*command, "--no-backoff"]) == 0
    printed = capsys.readouterr().out
    assert "-> IngestedOnly" in printed and "SUCCEEDED" in printed
    assert "ProcessAttempt" not in printed
    (ingest,) = calls(workdir)
    assert ingest["me"] == "ingest_landing.py:local", "no process job ran"
    assert _option(ingest["argv"], "--feed") == "payouts"
    assert _option(ingest["argv"], "--feeds-dir") == str(feeds)


def test_a_key_folder_that_names_no_feed_is_a_data_error_notified_without_batch(
    tmp_path: Path,
) -> None:
    """The real ingest job refuses an unknown feed before Spark starts (exit 2)."""
    settings = load_settings(arguments={"warehouse": str(tmp_path / "wh"), "namespace": "ns"})
    runner = LocalTaskRunner(workdir=REPOSITORY, settings=settings)
    execution = run_state_machine(
        PIPELINE_DEFINITION,
        {"source": str(tmp_path / "archive" / "a.csv"), "feed": "archive"},
        runner,
        substitutions=local_substitutions(settings),
        execution_name="e1",
        sleep=lambda _seconds: None,
    )
    assert (execution.status, execution.error) == ("FAILED", "Sluiceway.DataError")
    assert [command[1] for command in runner.commands] == ["jobs/ingest_landing.py"]
    assert _option(runner.commands[0], "--feed") == "archive"
    (notification,) = runner.notifications
    assert "exited 2 (BAD_INPUT)" in notification["Message"]
    assert runner.metrics == [], "no fallback"


def test_a_reconciliation_failure_stops_at_once_without_batch(workdir: Path) -> None:
    execution, runner, runs, _ = run(workdir, {"ingest_landing.py:local": 3})
    assert execution.status == "FAILED"
    assert execution.error == "Sluiceway.DataError"
    assert runs == ["ingest_landing.py:local"]
    assert runner.metrics == []
    (notification,) = runner.notifications
    assert "exited 3 (RECONCILIATION_FAILED)" in notification["Message"]


def test_a_refused_file_stops_at_once_without_batch(workdir: Path) -> None:
    """Exit 2 is what the ingest job returns for a file its feed's file policy refuses."""
    execution, runner, runs, _ = run(workdir, {"ingest_landing.py:local": 2})
    assert (execution.status, execution.error) == ("FAILED", "Sluiceway.DataError")
    assert runs == ["ingest_landing.py:local"]
    (notification,) = runner.notifications
    assert "exited 2 (BAD_INPUT)" in notification["Message"]


def test_a_busy_process_job_waits_and_runs_again_without_batch(workdir: Path) -> None:
    execution, runner, runs, waits = run(workdir, {"process_records.py:local": [4, 0]})
    assert execution.status == "SUCCEEDED", execution.cause
    assert runs == [
        "ingest_landing.py:local", "process_records.py:local", "process_records.py:local",
    ]  # fmt: skip
    assert waits == [600.0]
    assert runner.metrics == [] and runner.notifications == []


def test_an_unexpected_exit_on_both_engines_reaches_the_failure_notification(
    workdir: Path,
) -> None:
    exits = {"process_records.py:local": 1, "process_records.py:batch": 1}
    execution, runner, runs, _ = run(workdir, exits)
    assert execution.status == "FAILED"
    assert runs[-2:] == ["process_records.py:local", "process_records.py:batch"]
    assert json.loads(execution.cause)["ExitCode"] == 1
    (notification,) = runner.notifications
    assert "landing/a.csv" in notification["Message"]
    assert "after the Batch fallback" in notification["Message"]
    assert '"ExitCode": 1' in notification["Message"]


def test_a_job_that_outlives_its_timeout_is_states_timeout(workdir: Path) -> None:
    (workdir / "exits.json").write_text(json.dumps({"sleep": 5}))
    runner = LocalTaskRunner(workdir=workdir, settings=load_settings())
    call = TaskCall("IngestOnGlue", GLUE_JOB, {"JobName": "sluiceway-ingest"}, 1, 1)
    with pytest.raises(TaskFailed) as failure:
        runner(call)
    assert failure.value.error == "States.Timeout"
