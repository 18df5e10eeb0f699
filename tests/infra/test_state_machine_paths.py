"""The ASL runner itself: the data flow, error matching and intrinsic functions it implements.

These pin the Step Functions semantics the pipeline relies on, so a change to the runner that
would make an offline run disagree with AWS fails here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from sluiceway.orchestration import (
    StateMachineDefinitionError,
    TaskCall,
    TaskFailed,
    load_definition,
    run_state_machine,
)
from sluiceway.orchestration.paths import evaluate

pytestmark = pytest.mark.infra


def _task_machine(retry: list[dict[str, Any]], catch: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Retry": retry,
                "Catch": catch,
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }


def _always(error: str) -> Any:
    def runner(call: TaskCall) -> Any:
        raise TaskFailed(error, f"attempt {call.attempt}")

    return runner


def test_task_failed_wildcard_does_not_catch_a_timeout() -> None:
    machine = _task_machine([], [{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}])
    timed_out = run_state_machine(machine, {}, _always("States.Timeout"), sleep=lambda _: None)
    failed = run_state_machine(machine, {}, _always("Glue.Boom"), sleep=lambda _: None)
    assert (timed_out.status, timed_out.error) == ("FAILED", "States.Timeout")
    assert failed.status == "SUCCEEDED"
    assert failed.visited() == ["Work", "Caught"]


def test_backoff_grows_by_the_rate_and_is_capped_by_max_delay() -> None:
    retry = [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 10,
            "BackoffRate": 3.0,
            "MaxAttempts": 4,
            "MaxDelaySeconds": 50,
        }
    ]
    waits: list[float] = []
    execution = run_state_machine(_task_machine(retry, []), {}, _always("X"), sleep=waits.append)
    assert waits == [10.0, 30.0, 50.0, 50.0]
    assert execution.attempts("Work") == 5
    assert (execution.status, execution.cause) == ("FAILED", "attempt 5")


def test_catch_puts_error_and_cause_at_its_result_path_and_keeps_the_input() -> None:
    catch = [{"ErrorEquals": ["X"], "ResultPath": "$.failure", "Next": "Caught"}]
    machine = _task_machine([], catch)
    execution = run_state_machine(machine, {"keep": 1}, _always("X"), sleep=lambda _: None)
    assert execution.output == {"keep": 1, "failure": {"Error": "X", "Cause": "attempt 1"}}


def test_intrinsics_format_array_hash_and_merge() -> None:
    data = {"a": "x", "n": 5, "d": {"p": 1}, "e": {"p": 2, "q": 3}}
    assert evaluate("States.Format('{}-{}', $.a, $.n)", data, {}) == "x-5"
    assert evaluate("States.Array('--n', States.Format('{}', $.n))", data, {}) == ["--n", "5"]
    assert evaluate("States.Hash('abc', 'SHA-256')", data, {}) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert evaluate("States.JsonMerge($.d, $.e, false)", data, {}) == {"p": 2, "q": 3}
    assert evaluate("States.Format('it\\'s {}', $.a)", data, {}) == "it's x"


def test_intrinsics_split_a_string_on_each_delimiter_and_pick_from_an_array() -> None:
    data = {"text": "This.is+a,test=string", "key": "landing/payouts/a.csv", "i": 1}
    # The example of the AWS documentation: every character of the second argument divides.
    assert evaluate("States.StringSplit($.text, '.+,=')", data, {}) == [
        "This", "is", "a", "test", "string",
    ]  # fmt: skip
    assert evaluate("States.StringSplit('1,2,3', ',')", data, {}) == ["1", "2", "3"]
    assert evaluate("States.StringSplit('solo', '/')", data, {}) == ["solo"]
    assert evaluate("States.ArrayLength(States.StringSplit($.key, '/'))", data, {}) == 3
    assert evaluate("States.ArrayGetItem(States.StringSplit($.key, '/'), $.i)", data, {}) == (
        "payouts"
    )
    assert evaluate("States.ArrayGetItem(States.Array('a', 'b'), 0)", data, {}) == "a"
    assert evaluate("States.MathAdd(States.ArrayLength(States.Array(1, 2)), -1)", data, {}) == 1


@pytest.mark.parametrize(
    "expression",
    [
        "States.ArrayGetItem(States.Array('a'), 1)",
        "States.ArrayGetItem(States.Array('a'), -1)",
        "States.ArrayGetItem('a', 0)",
        "States.ArrayLength('abc')",
        "States.StringSplit(1, '/')",
        # AWS does not document the piece between two delimiters; the runner does not guess.
        "States.StringSplit('a//b', '/')",
        "States.StringSplit('a/', '/')",
    ],
)
def test_an_intrinsic_given_what_it_cannot_use_fails_as_states_runtime(expression: str) -> None:
    machine = {
        "StartAt": "Pick",
        "States": {"Pick": {"Type": "Pass", "Parameters": {"v.$": expression}, "End": True}},
    }
    execution = run_state_machine(machine, {}, _always("X"))
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime"), expression


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("incoming/*/*", "incoming/payouts/a.csv", True),
        ("incoming/*/*", "incoming/payouts/late/a.csv", True),
        ("incoming/*/*", "incoming/a.csv", False),
        ("incoming/*/*", "other/payouts/a.csv", False),
        ("*/*", "payouts/a.csv", True),
        ("*/*", "a.csv", False),
        ("*.csv", "a.csv.gz", False),
        ("log-*.txt", "log-2026.txt", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a.b", "axb", False),
    ],
)
def test_string_matches_has_one_wildcard_and_an_escape_for_it(
    pattern: str, value: str, matches: bool
) -> None:
    machine = {
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.v", "StringMatches": pattern, "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Succeed"},
        },
    }
    execution = run_state_machine(machine, {"v": value}, _always("X"))
    assert execution.visited()[-1] == ("Yes" if matches else "No")


def test_a_missing_input_field_fails_the_execution_as_states_runtime() -> None:
    machine = {
        "StartAt": "Pick",
        "States": {"Pick": {"Type": "Pass", "Parameters": {"v.$": "$.missing"}, "End": True}},
    }
    execution = run_state_machine(machine, {}, _always("X"))
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")
    assert "missing" in execution.cause


def test_fields_outside_the_implemented_subset_are_refused_by_name() -> None:
    machine = _task_machine([], [])
    machine["States"]["Work"]["HeartbeatSeconds"] = 60
    with pytest.raises(StateMachineDefinitionError, match="HeartbeatSeconds"):
        load_definition(machine)
    parallel = {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": True}}}
    with pytest.raises(StateMachineDefinitionError, match="Parallel"):
        load_definition(parallel)
    with pytest.raises(StateMachineDefinitionError, match=r"States\.UUID"):
        evaluate("States.UUID()", {}, {})


def test_every_placeholder_needs_a_substitution() -> None:
    machine = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${Topic}", "End": True}}}
    assert load_definition(machine, {"Topic": "arn:t"})["States"]["A"]["Result"] == "arn:t"
    with pytest.raises(StateMachineDefinitionError, match="Topic"):
        load_definition(machine, {})
