"""The starter (infra/statemachine/starter.asl.json): one pipeline execution per object version.

The StartExecution API is simulated here, standing in for AWS, with its documented rule: a
name already used by a finished execution is refused with ExecutionAlreadyExists. The
execution name and the feed the pipeline gets are computed by the definition's own intrinsic
functions.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from cfnlint.decode import decode_str

from sluiceway.feeds import feed_from_key
from sluiceway.orchestration import STARTER_DEFINITION, TaskCall, TaskFailed, run_state_machine

pytestmark = pytest.mark.infra

START_EXECUTION = "arn:aws:states:::states:startExecution"
SUBSTITUTIONS = {
    "PipelineArn": "arn:aws:states:eu-west-1:1:stateMachine:p",
    "FailureTopicArn": "t",
    "LandingPrefix": "incoming/",
}


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


def start(api: StepFunctionsApi, event: dict[str, str], prefix: str = "incoming/") -> Any:
    substitutions = SUBSTITUTIONS | {"LandingPrefix": prefix}
    return run_state_machine(
        STARTER_DEFINITION, event, api, substitutions=substitutions, sleep=lambda _: None
    )


def test_a_repeated_event_starts_nothing_new() -> None:
    api = StepFunctionsApi()
    first = start(api, landing_event("incoming/a.csv", "v1"))
    again = start(api, landing_event("incoming/a.csv", "v1"))
    assert first.status == again.status == "SUCCEEDED"
    assert first.visited() == ["FeedFromKey", "NoFeedFolder", "StartPipeline"]
    assert again.visited() == ["FeedFromKey", "NoFeedFolder", "StartPipeline", "AlreadyStarted"]
    assert len(api.started) == 1
    (name,) = api.started
    expected = hashlib.sha256(b"s3://landing/incoming/a.csv?versionId=v1").hexdigest()
    assert name == expected
    assert api.started[name]["source"] == "s3://landing/incoming/a.csv"
    assert api.started[name]["source_version"] == "v1"
    assert api.started[name]["feed"] == "transactions"


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


@pytest.mark.parametrize(
    ("prefix", "key", "feed"),
    [
        ("incoming/", "incoming/payouts/2026-11-25.csv", "payouts"),
        ("incoming/", "incoming/2026-11-25.csv", "transactions"),
        ("incoming/", "incoming/payouts/late/2026-11-25.csv", "payouts"),
        ("landing/eu/", "landing/eu/payouts/2026-11-25.csv", "payouts"),
        ("landing/eu/", "landing/eu/2026-11-25.csv", "transactions"),
        ("", "payouts/2026-11-25.csv", "payouts"),
        ("", "2026-11-25.csv", "transactions"),
    ],
)
def test_the_pipeline_gets_the_feed_the_key_names_by_the_rule_of_feed_from_key(
    prefix: str, key: str, feed: str
) -> None:
    api = StepFunctionsApi()
    execution = start(api, landing_event(key, "v1"), prefix)
    assert execution.status == "SUCCEEDED", execution.cause
    (started,) = api.started.values()
    assert started["feed"] == feed == feed_from_key(key, prefix)
    assert started["source"] == f"s3://landing/{key}"


def test_the_stack_refuses_a_landing_prefix_the_starter_cannot_read_a_feed_after() -> None:
    """The starter counts the prefix's folders, so the prefix is empty or ends in a slash; a
    quote would end the intrinsic function's string literal early."""
    template = STARTER_DEFINITION.parents[1] / "cloudformation" / "pipeline.yaml"
    decoded, errors = decode_str(template.read_text())
    assert not errors, errors
    pattern = decoded["Parameters"]["LandingPrefix"]["AllowedPattern"]
    assert decoded["Parameters"]["LandingPrefix"]["Default"] == "incoming/"
    for accepted in ("incoming/", "", "landing/eu/"):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("incoming", "landing/eu", "/incoming/", "a//", "in*/", "in\\/", "it's/"):
        assert not re.fullmatch(pattern, refused), refused
    substitutions = decoded["Resources"]["StarterStateMachine"]["Properties"][
        "DefinitionSubstitutions"
    ]
    assert substitutions["LandingPrefix"] == {"Ref": "LandingPrefix"}
