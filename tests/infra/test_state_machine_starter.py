"""The starter (infra/statemachine/starter.asl.json): one pipeline execution per object version.

The StartExecution API is simulated here, standing in for AWS, with its documented rule: a
name already used by a finished execution is refused with ExecutionAlreadyExists. The
execution name itself is computed by the definition's own intrinsic functions.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sluiceway.orchestration import STARTER_DEFINITION, TaskCall, TaskFailed, run_state_machine

pytestmark = pytest.mark.infra

START_EXECUTION = "arn:aws:states:::states:startExecution"
SUBSTITUTIONS = {"PipelineArn": "arn:aws:states:eu-west-1:1:stateMachine:p", "FailureTopicArn": "t"}


class StepFunctionsApi:
    """Keeps started executions by name, like the service does for 90 days."""

    def __init__(self, broken: bool = False) -> None:
        self.started: dict[str, Any] = {}
        self.notifications: list[dict[str, Any]] = []
        self.broken = broken

    def __call__(self, call: TaskCall) -> Any:
        if call.resource == START_EXECUTION:
            if self.broken:
                raise TaskFailed("StepFunctions.StateMachineDoesNotExistException", "gone")
            name = call.parameters["Name"]
            if name in self.started:
                raise TaskFailed("StepFunctions.ExecutionAlreadyExistsException", name)
            self.started[name] = call.parameters["Input"]
            return {"ExecutionArn": f"arn:execution:{name}"}
        self.notifications.append(call.parameters)
        return {"MessageId": "m1"}


def landing_event(key: str, version: str) -> dict[str, str]:
    """What the EventBridge rule's input transformer hands the starter."""
    return {"bucket": "landing", "key": key, "version": version}


def start(api: StepFunctionsApi, event: dict[str, str]) -> Any:
    return run_state_machine(
        STARTER_DEFINITION, event, api, substitutions=SUBSTITUTIONS, sleep=lambda _: None
    )


def test_a_repeated_event_starts_nothing_new() -> None:
    api = StepFunctionsApi()
    first = start(api, landing_event("incoming/a.csv", "v1"))
    again = start(api, landing_event("incoming/a.csv", "v1"))
    assert first.status == again.status == "SUCCEEDED"
    assert first.visited() == ["StartPipeline"]
    assert again.visited() == ["StartPipeline", "AlreadyStarted"]
    assert len(api.started) == 1
    (name,) = api.started
    expected = hashlib.sha256(b"s3://landing/incoming/a.csv?versionId=v1").hexdigest()
    assert name == expected
    assert api.started[name]["source"] == "s3://landing/incoming/a.csv"
    assert api.started[name]["source_version"] == "v1"


def test_a_new_version_of_the_same_key_starts_a_new_execution() -> None:
    api = StepFunctionsApi()
    start(api, landing_event("incoming/a.csv", "v1"))
    start(api, landing_event("incoming/a.csv", "v2"))
    assert len(api.started) == 2


def test_a_start_that_fails_for_another_reason_is_reported_not_swallowed() -> None:
    api = StepFunctionsApi(broken=True)
    execution = start(api, landing_event("incoming/a.csv", "v1"))
    assert execution.status == "FAILED"
    assert execution.error == "StepFunctions.StateMachineDoesNotExistException"
    (message,) = api.notifications
    assert "s3://landing/incoming/a.csv" in message["Message"]
    assert "version v1" in message["Message"]
