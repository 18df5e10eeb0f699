"""The deployed definition (infra/statemachine/pipeline.asl.json) run offline.

Task outcomes are simulated here, standing in for AWS: Glue runs that succeed, hit transient
errors, fail for good, and Batch jobs that fail. The control flow, the arguments each job gets
and the failure notification come from the very file CloudFormation deploys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from sluiceway.orchestration import (
    PIPELINE_DEFINITION,
    TaskCall,
    TaskFailed,
    local_substitutions,
    run_state_machine,
)
from sluiceway.orchestration.asl import Execution
from sluiceway.orchestration.local_tasks import BATCH_JOB, GLUE_JOB, PUT_METRIC_DATA, SNS_PUBLISH
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

SOURCE = "s3://landing/incoming/2026-11-26/transactions.csv"
SETTINGS = load_settings(arguments={"warehouse": "s3://warehouse/", "namespace": "sluiceway_dev"})


class SimulatedAws:
    """Answers each task from a script of outcomes per state (default: success)."""

    def __init__(self, script: dict[str, Iterable[str]] | None = None) -> None:
        self.script = {state: list(outcomes) for state, outcomes in (script or {}).items()}
        self.calls: list[TaskCall] = []

    def __call__(self, call: TaskCall) -> Any:
        self.calls.append(call)
        outcomes = self.script.get(call.state, [])
        outcome = outcomes.pop(0) if outcomes else "ok"
        if outcome != "ok":
            raise TaskFailed(outcome, json.dumps({"state": call.state, "attempt": call.attempt}))
        if call.resource == GLUE_JOB:
            return {"JobRunState": "SUCCEEDED", "Id": f"jr_{len(self.calls)}"}
        return {"Status": "SUCCEEDED"}

    def parameters(self, state: str) -> list[Any]:
        return [call.parameters for call in self.calls if call.state == state]

    def resources(self) -> list[str]:
        return [call.resource for call in self.calls]


def run(aws: SimulatedAws, engine: str = "glue", **job: Any) -> Execution:
    return run_state_machine(
        PIPELINE_DEFINITION,
        {"source": SOURCE, **job},
        aws,
        substitutions=local_substitutions(SETTINGS, engine),
        execution_name="e1",
        sleep=lambda _seconds: None,
    )


def test_happy_path_ingests_then_processes_on_glue() -> None:
    aws = SimulatedAws()
    execution = run(aws, source_version="v7")
    assert execution.status == "SUCCEEDED"
    assert execution.visited() == [
        "Defaults", "MergeInput", "IngestEngine", "IngestOnGlue",
        "ProcessEngine", "ProcessOnGlue", "Succeeded",
    ]  # fmt: skip
    assert aws.parameters("IngestOnGlue") == [
        {
            "JobName": "sluiceway-ingest",
            "Arguments": {"--source": SOURCE, "--source-version": "v7"},
        }
    ]
    assert aws.parameters("ProcessOnGlue")[0]["Arguments"] == {
        "--source": SOURCE,
        "--handler": "financial",
        "--batch-size": "500",
    }
    assert execution.output["results"]["ingest"]["JobRunState"] == "SUCCEEDED"


def test_transient_glue_errors_are_retried_with_backoff_and_no_fallback() -> None:
    aws = SimulatedAws(
        {"IngestOnGlue": ["Glue.ConcurrentRunsExceededException", "Glue.AWSGlueException"]}
    )
    execution = run(aws)
    assert execution.status == "SUCCEEDED"
    assert execution.attempts("IngestOnGlue") == 3
    assert execution.retry_delays("IngestOnGlue") == [60.0, 120.0]
    assert BATCH_JOB not in aws.resources()
    assert "IngestOnBatch" not in execution.visited()


def test_glue_timeouts_are_retried_too_then_fall_back_when_they_persist() -> None:
    aws = SimulatedAws({"ProcessOnGlue": ["States.Timeout"] * 4})
    execution = run(aws)
    assert execution.status == "SUCCEEDED"
    assert execution.attempts("ProcessOnGlue") == 4
    assert execution.visited()[-3:] == ["ProcessFallbackUsed", "ProcessOnBatch", "Succeeded"]


def test_a_failed_glue_job_falls_back_to_the_same_job_on_batch_with_the_same_arguments() -> None:
    aws = SimulatedAws({"IngestOnGlue": ["States.TaskFailed"]})
    execution = run(aws, source_version="v7")
    assert execution.status == "SUCCEEDED"
    # A failed job run is not a transient error: one attempt, then the fallback.
    assert execution.attempts("IngestOnGlue") == 1
    assert execution.visited()[3:7] == [
        "IngestOnGlue", "IngestFallbackUsed", "IngestOnBatch", "ProcessEngine",
    ]  # fmt: skip
    batch = aws.parameters("IngestOnBatch")[0]
    assert batch["JobName"] == "sluiceway-ingest-e1"
    assert batch["ContainerOverrides"]["Command"] == [
        "python3", "jobs/ingest_landing.py",
        "--source", SOURCE, "--source-version", "v7",
        "--profile", "batch", "--warehouse", "s3://warehouse/", "--namespace", "sluiceway_dev",
    ]  # fmt: skip
    metric = aws.parameters("IngestFallbackUsed")[0]
    assert metric["MetricData"][0]["MetricName"] == "FallbackUsed"
    dimensions = metric["MetricData"][0]["Dimensions"]
    assert dimensions == [{"Name": "Namespace", "Value": "sluiceway_dev"}]
    # The processing step goes back to the engine: the fallback is per step.
    assert aws.parameters("ProcessOnGlue")


def test_a_failure_to_count_the_fallback_never_blocks_the_fallback() -> None:
    aws = SimulatedAws(
        {"IngestOnGlue": ["States.TaskFailed"], "IngestFallbackUsed": ["CloudWatch.Boom"] * 3}
    )
    execution = run(aws)
    assert execution.status == "SUCCEEDED"
    assert execution.attempts("IngestFallbackUsed") == 3
    assert "IngestOnBatch" in execution.visited()


def test_batch_failure_after_glue_failure_notifies_and_fails_with_the_cause() -> None:
    aws = SimulatedAws(
        {"IngestOnGlue": ["States.TaskFailed"], "IngestOnBatch": ["States.TaskFailed"]}
    )
    execution = run(aws)
    assert execution.status == "FAILED"
    assert execution.error == "States.TaskFailed"
    assert json.loads(execution.cause) == {"state": "IngestOnBatch", "attempt": 1}
    assert execution.visited()[-2:] == ["NotifyFailure", "Failed"]
    assert "ProcessEngine" not in execution.visited()
    (message,) = aws.parameters("NotifyFailure")
    assert message["TopicArn"] == "local"
    assert SOURCE in message["Message"]
    assert "execution e1" in message["Message"]
    assert "IngestOnBatch" in message["Message"]
    assert [resource for resource in aws.resources() if resource == SNS_PUBLISH] == [SNS_PUBLISH]


def test_emr_serverless_engine_runs_the_same_scripts_with_the_same_arguments() -> None:
    aws = SimulatedAws({"ProcessOnEmrServerless": ["States.TaskFailed"]})
    execution = run(aws, engine="emr-serverless", handler="audit", batch_size=50)
    assert execution.status == "SUCCEEDED"
    assert GLUE_JOB not in aws.resources()
    assert execution.visited()[3] == "IngestOnEmrServerless"
    driver = aws.parameters("ProcessOnEmrServerless")[0]["JobDriver"]["SparkSubmit"]
    assert driver["EntryPoint"] == "local/jobs/process_records.py"
    emr_arguments = driver["EntryPointArguments"]
    batch_command = aws.parameters("ProcessOnBatch")[0]["ContainerOverrides"]["Command"]
    assert batch_command[:2] == ["python3", "jobs/process_records.py"]
    assert _without_profile(batch_command[2:]) == _without_profile(emr_arguments)
    assert emr_arguments[:6] == ["--source", SOURCE, "--handler", "audit", "--batch-size", "50"]
    assert PUT_METRIC_DATA in aws.resources()


def _without_profile(arguments: list[str]) -> list[str]:
    index = arguments.index("--profile")
    return arguments[:index] + arguments[index + 2 :]
