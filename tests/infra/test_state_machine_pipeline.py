"""The deployed definition (infra/statemachine/pipeline.asl.json) run offline.

Task outcomes are simulated here, standing in for AWS: Glue runs that succeed, hit transient
errors, fail for good, and Batch jobs that fail, each with or without the outcome object the
failed job wrote (read back with S3 GetObject). The control flow, the arguments each job gets
and the failure notifications come from the very file CloudFormation deploys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from sluiceway.errors import ExitCode
from sluiceway.orchestration import (
    PIPELINE_DEFINITION,
    STARTER_DEFINITION,
    TaskCall,
    TaskFailed,
    local_substitutions,
    run_state_machine,
)
from sluiceway.orchestration.asl import Execution
from sluiceway.orchestration.local_tasks import (
    BATCH_JOB,
    EMR_SERVERLESS_JOB,
    GET_OBJECT,
    GLUE_JOB,
    NO_SUCH_KEY,
    PUT_METRIC_DATA,
    SNS_PUBLISH,
)
from sluiceway.orchestration.outcome import outcome_of
from sluiceway.settings import load_settings

pytestmark = pytest.mark.infra

SOURCE = "s3://landing/incoming/2026-11-26/transactions.csv"
SETTINGS = load_settings(arguments={"warehouse": "s3://warehouse/", "namespace": "sluiceway_dev"})
SUBSTITUTIONS = local_substitutions(SETTINGS) | {
    "OutcomeBucket": "warehouse",
    "OutcomeStore": "s3://warehouse",
}
OUTCOME_STORE = "s3:/"  # uri s3://warehouse/_outcomes/... -> key warehouse/_outcomes/...


class SimulatedAws:
    """Answers each task from a script of outcomes per state (default: success).

    `written` holds, per job state, the exit codes its failed runs leave as outcome objects
    (one per run, in order); a run without one left no outcome (S3 says NoSuchKey).
    """

    def __init__(
        self,
        script: dict[str, Iterable[str]] | None = None,
        written: dict[str, Iterable[int]] | None = None,
    ) -> None:
        self.script = {state: list(outcomes) for state, outcomes in (script or {}).items()}
        self.written = {state: list(codes) for state, codes in (written or {}).items()}
        self.objects: dict[str, str] = {}
        self.calls: list[TaskCall] = []

    def __call__(self, call: TaskCall) -> Any:
        self.calls.append(call)
        if call.resource == GET_OBJECT:
            key = f"{call.parameters['Bucket']}/{call.parameters['Key']}"
            if key not in self.objects:
                raise TaskFailed(NO_SUCH_KEY, "The specified key does not exist.")
            return {"Body": self.objects[key]}
        outcomes = self.script.get(call.state, [])
        outcome = outcomes.pop(0) if outcomes else "ok"
        if outcome != "ok":
            codes = self.written.get(call.state, [])
            if codes:
                self.objects[_outcome_key(call)] = json.dumps(outcome_of(codes.pop(0)))
            raise TaskFailed(outcome, json.dumps({"state": call.state, "attempt": call.attempt}))
        if call.resource == GLUE_JOB:
            return {"JobRunState": "SUCCEEDED", "Id": f"jr_{len(self.calls)}"}
        return {"Status": "SUCCEEDED"}

    def parameters(self, state: str) -> list[Any]:
        return [call.parameters for call in self.calls if call.state == state]

    def resources(self) -> list[str]:
        return [call.resource for call in self.calls]


def _outcome_key(call: TaskCall) -> str:
    """Where the job of this call writes its outcome: the bucket/key its --outcome-uri names."""
    parameters = call.parameters
    if call.resource == GLUE_JOB:
        uri = parameters["Arguments"]["--outcome-uri"]
    elif call.resource == BATCH_JOB:
        command = parameters["ContainerOverrides"]["Command"]
        uri = command[command.index("--outcome-uri") + 1]
    else:
        arguments = parameters["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
        uri = arguments[arguments.index("--outcome-uri") + 1]
    return uri.removeprefix(OUTCOME_STORE + "/")


def run(aws: SimulatedAws, engine: str = "glue", **job: Any) -> Execution:
    return run_state_machine(
        PIPELINE_DEFINITION,
        {"source": SOURCE, **job},
        aws,
        substitutions=SUBSTITUTIONS | {"Engine": engine},
        execution_name="e1",
        sleep=lambda _seconds: None,
    )


def test_happy_path_ingests_then_processes_on_glue() -> None:
    aws = SimulatedAws()
    execution = run(aws, source_version="v7")
    assert execution.status == "SUCCEEDED"
    assert execution.visited() == [
        "Defaults", "MergeInput", "IngestAttempt", "IngestEngine", "IngestOnGlue",
        "ProcessedFeed", "ProcessAttempt", "ProcessEngine", "ProcessOnGlue", "Succeeded",
    ]  # fmt: skip
    (ingest,) = aws.parameters("IngestOnGlue")
    outcome_uri = ingest["Arguments"].pop("--outcome-uri")
    assert ingest == {
        "JobName": "sluiceway-ingest",
        "Arguments": {"--source": SOURCE, "--source-version": "v7", "--feed": "transactions"},
    }
    assert outcome_uri.startswith("s3://warehouse/_outcomes/e1/ingest-")
    process = aws.parameters("ProcessOnGlue")[0]["Arguments"]
    assert process.pop("--outcome-uri").startswith("s3://warehouse/_outcomes/e1/process-")
    assert process == {
        "--source": SOURCE, "--handler": "financial", "--batch-size": "500",
        "--feed": "transactions",
    }  # fmt: skip
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
    # No outcome object: the job never reached its end, so it was infrastructure.
    assert execution.visited()[4:10] == [
        "IngestOnGlue", "IngestOutcome", "IngestFallbackUsed", "IngestOnBatch", "ProcessedFeed",
        "ProcessAttempt",
    ]  # fmt: skip
    batch = aws.parameters("IngestOnBatch")[0]
    assert batch["JobName"] == "sluiceway-ingest-e1"
    outcome_uri = aws.parameters("IngestOnGlue")[0]["Arguments"]["--outcome-uri"]
    assert batch["ContainerOverrides"]["Command"] == [
        "python3", "jobs/ingest_landing.py",
        "--source", SOURCE, "--source-version", "v7", "--outcome-uri", outcome_uri,
        "--feed", "transactions",
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
    assert execution.visited()[4] == "IngestOnEmrServerless"
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


def test_a_data_error_on_glue_notifies_and_fails_at_once_without_batch() -> None:
    aws = SimulatedAws({"IngestOnGlue": ["States.TaskFailed"]}, {"IngestOnGlue": [2]})
    execution = run(aws)
    assert execution.status == "FAILED"
    assert execution.error == "Sluiceway.DataError"
    assert execution.attempts("IngestOnGlue") == 1
    assert execution.visited()[-5:] == [
        "IngestOnGlue", "IngestOutcome", "IngestFailureKind", "NotifyDataError", "DataErrorFailed",
    ]  # fmt: skip
    assert BATCH_JOB not in aws.resources()
    assert PUT_METRIC_DATA not in aws.resources(), "a data error is not a fallback"
    (message,) = aws.parameters("NotifyDataError")
    assert "exited 2 (BAD_INPUT)" in message["Message"]
    assert SOURCE in message["Message"]


def test_a_failed_reconciliation_on_emr_serverless_is_a_data_error_too() -> None:
    aws = SimulatedAws(
        {"ProcessOnEmrServerless": ["States.TaskFailed"]}, {"ProcessOnEmrServerless": [3]}
    )
    execution = run(aws, engine="emr-serverless")
    assert execution.error == "Sluiceway.DataError"
    assert "ProcessOnBatch" not in execution.visited()
    assert "exited 3 (RECONCILIATION_FAILED)" in aws.parameters("NotifyDataError")[0]["Message"]


def test_a_busy_namespace_waits_and_runs_the_step_again_on_the_engine() -> None:
    waits: list[float] = []
    aws = SimulatedAws({"ProcessOnGlue": ["States.TaskFailed"]}, {"ProcessOnGlue": [4]})
    execution = run_state_machine(
        PIPELINE_DEFINITION,
        {"source": SOURCE},
        aws,
        substitutions=SUBSTITUTIONS,
        execution_name="e1",
        sleep=waits.append,
    )
    assert execution.status == "SUCCEEDED"
    assert execution.attempts("ProcessOnGlue") == 2
    assert waits == [600.0]
    assert BATCH_JOB not in aws.resources()
    first, second = (call["Arguments"]["--outcome-uri"] for call in aws.parameters("ProcessOnGlue"))
    assert first != second, "each attempt writes its own outcome, never reads an old one"
    assert execution.output["retries"] == {"ingest": 0, "process": 1}


def test_an_endpoint_that_stays_unavailable_is_retried_a_bounded_number_of_times() -> None:
    aws = SimulatedAws({"ProcessOnGlue": ["States.TaskFailed"] * 10}, {"ProcessOnGlue": [5] * 10})
    execution = run(aws)
    assert execution.status == "FAILED"
    assert execution.error == "Sluiceway.RetriesExhausted"
    assert execution.attempts("ProcessOnGlue") == 7, "the first run and six retries"
    assert execution.visited()[-2:] == ["NotifyGaveUp", "RetriesExhausted"]
    assert BATCH_JOB not in aws.resources()
    assert "gave up on" in aws.parameters("NotifyGaveUp")[0]["Message"]


def test_a_job_that_glue_keeps_refusing_as_concurrent_waits_instead_of_falling_back() -> None:
    refused = ["Glue.ConcurrentRunsExceededException"] * 4
    aws = SimulatedAws({"IngestOnGlue": refused})
    execution = run(aws)
    assert execution.status == "SUCCEEDED"
    assert execution.attempts("IngestOnGlue") == 5, "3 backoff retries, a wait, then success"
    assert "IngestWaitBeforeRetry" in execution.visited()
    assert BATCH_JOB not in aws.resources()


def test_a_data_error_on_the_batch_fallback_is_reported_as_a_data_error() -> None:
    aws = SimulatedAws(
        {"IngestOnGlue": ["States.TaskFailed"], "IngestOnBatch": ["States.TaskFailed"]},
        {"IngestOnBatch": [2]},
    )
    execution = run(aws)
    assert execution.error == "Sluiceway.DataError"
    assert execution.visited()[-4:] == [
        "IngestBatchOutcome", "IngestBatchFailureKind", "NotifyDataError", "DataErrorFailed",
    ]  # fmt: skip


def test_every_exit_code_the_jobs_name_is_sorted_by_the_definition() -> None:
    states = json.loads(PIPELINE_DEFINITION.read_text())["States"]
    for kind in ("IngestFailureKind", "ProcessBatchFailureKind"):
        data, later = (
            {rule["StringEquals"] for rule in choice["Or"]} for choice in states[kind]["Choices"]
        )
        assert data == {code.name for code in ExitCode if outcome_of(code)["kind"] == "data"}, kind
        assert later == {
            code.name for code in ExitCode if outcome_of(code)["kind"] == "retry-later"
        }, kind


def test_a_fenced_writer_is_never_retried_into_a_green_execution() -> None:
    """Exit 6: another writer ran in its place; a retry would only find its `completed` row."""
    aws = SimulatedAws({"IngestOnGlue": ["States.TaskFailed"]}, {"IngestOnGlue": [6]})
    execution = run(aws)
    assert execution.status == "FAILED"
    assert execution.error == "Sluiceway.DataError"
    assert execution.attempts("IngestOnGlue") == 1
    assert BATCH_JOB not in aws.resources()
    assert "exited 6 (LEASE_LOST)" in aws.parameters("NotifyDataError")[0]["Message"]


def _option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def test_a_feed_that_is_not_processed_is_ingested_with_its_feed_and_ends_green() -> None:
    aws = SimulatedAws()
    execution = run(aws, feed="payouts")
    assert execution.status == "SUCCEEDED"
    assert execution.visited()[-3:] == ["IngestOnGlue", "ProcessedFeed", "IngestedOnly"]
    (ingest,) = aws.parameters("IngestOnGlue")
    assert ingest["Arguments"]["--feed"] == "payouts"
    assert [call.state for call in aws.calls] == ["IngestOnGlue"], "no process job is started"


def test_the_batch_fallback_carries_the_feed_and_another_feed_still_skips_processing() -> None:
    aws = SimulatedAws({"IngestOnGlue": ["States.TaskFailed"]})
    execution = run(aws, feed="payouts")
    assert execution.status == "SUCCEEDED"
    assert execution.visited()[-3:] == ["IngestOnBatch", "ProcessedFeed", "IngestedOnly"]
    command = aws.parameters("IngestOnBatch")[0]["ContainerOverrides"]["Command"]
    assert _option(command, "--feed") == "payouts"
    assert not aws.parameters("ProcessOnGlue") and not aws.parameters("ProcessOnBatch")


def test_every_engine_and_the_fallback_pass_the_feed_to_both_jobs() -> None:
    aws = SimulatedAws({"ProcessOnEmrServerless": ["States.TaskFailed"]})
    execution = run(aws, engine="emr-serverless", feed="transactions")
    assert execution.status == "SUCCEEDED"
    for state in ("IngestOnEmrServerless", "ProcessOnEmrServerless"):
        (parameters,) = aws.parameters(state)
        arguments = parameters["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
        assert _option(arguments, "--feed") == "transactions", state
    command = aws.parameters("ProcessOnBatch")[0]["ContainerOverrides"]["Command"]
    assert _option(command, "--feed") == "transactions"
    emr = run(SimulatedAws(), engine="emr-serverless", feed="payouts")
    assert emr.visited()[-3:] == ["IngestOnEmrServerless", "ProcessedFeed", "IngestedOnly"]


def _pipeline_input(key: str) -> Any:
    """What the starter hands StartExecution for a new object under the prefix landing/."""
    inputs: list[Any] = []

    def start_execution(call: TaskCall) -> Any:
        inputs.append(call.parameters["Input"])
        return {"ExecutionArn": "arn:execution:e1"}

    substitutions = {"PipelineArn": "p", "FailureTopicArn": "t", "LandingPrefix": "landing/"}
    started = run_state_machine(
        STARTER_DEFINITION,
        {"bucket": "landing", "key": key, "version": "v1"},
        start_execution,
        substitutions=substitutions,
    )
    assert started.status == "SUCCEEDED", started.cause
    (pipeline_input,) = inputs
    return pipeline_input


@pytest.mark.parametrize("engine", ["glue", "emr-serverless"])
def test_a_key_under_a_feed_folder_is_ingested_as_that_feed_and_not_processed(
    engine: str,
) -> None:
    aws = SimulatedAws()
    execution = run_state_machine(
        PIPELINE_DEFINITION,
        _pipeline_input("landing/payouts/2026-11-25.csv"),
        aws,
        substitutions=SUBSTITUTIONS | {"Engine": engine},
        execution_name="e1",
    )
    assert execution.status == "SUCCEEDED"
    assert execution.visited()[-1] == "IngestedOnly"
    (call,) = aws.calls
    assert call.resource == (GLUE_JOB if engine == "glue" else EMR_SERVERLESS_JOB)
    if call.resource == GLUE_JOB:
        glue = call.parameters["Arguments"]
        feed, source = glue["--feed"], glue["--source"]
    else:
        emr = call.parameters["JobDriver"]["SparkSubmit"]["EntryPointArguments"]
        feed, source = _option(emr, "--feed"), _option(emr, "--source")
    assert feed == "payouts"
    assert source == "s3://landing/landing/payouts/2026-11-25.csv"


def test_a_key_without_a_feed_folder_is_ingested_and_processed_as_transactions() -> None:
    aws = SimulatedAws()
    execution = run_state_machine(
        PIPELINE_DEFINITION,
        _pipeline_input("landing/2026-11-25.csv"),
        aws,
        substitutions=SUBSTITUTIONS,
        execution_name="e1",
    )
    assert execution.status == "SUCCEEDED"
    assert execution.visited()[-2:] == ["ProcessOnGlue", "Succeeded"]
    assert aws.parameters("IngestOnGlue")[0]["Arguments"]["--feed"] == "transactions"
    assert aws.parameters("ProcessOnGlue")[0]["Arguments"]["--feed"] == "transactions"


def test_the_jobs_on_aws_read_their_feed_from_the_wheel_not_from_a_feeds_dir() -> None:
    """docs/deploying.md says so: neither the definition nor the Glue defaults name a folder."""
    assert "--feeds-dir" not in PIPELINE_DEFINITION.read_text()
    template = PIPELINE_DEFINITION.parents[1] / "cloudformation" / "pipeline.yaml"
    assert "--feeds-dir" not in template.read_text()
    assert "--feed" in PIPELINE_DEFINITION.read_text()
