"""A small, strict interpreter for the Amazon States Language subset sluiceway's definitions use.

It exists so the very definition file that CloudFormation deploys can run offline: tests walk
its retry, fallback and failure paths, and `sluiceway run` follows it with local jobs. Tasks
are handed to a pluggable `TaskRunner`; the interpreter only does control flow and data flow
(paths, Parameters, ResultSelector, ResultPath, Retry, Catch). A field or state type outside
the subset raises `StateMachineDefinitionError` instead of being ignored, so an offline run
never quietly differs from AWS.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluiceway.orchestration.paths import (
    PathNotFound,
    StateMachineDefinitionError,
    read_path,
    resolve_parameters,
    write_path,
)

ALL_ERRORS = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
RUNTIME = "States.Runtime"

_COMMON = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | {"Parameters", "Result", "ResultPath"},
    "Task": _COMMON
    | {
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
    },
    "Choice": {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath"},
    "Wait": _COMMON | {"Seconds"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
}
_TOP_LEVEL = {"Comment", "StartAt", "States", "TimeoutSeconds", "Version"}
_RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"}
_CATCH_FIELDS = {"ErrorEquals", "Next", "ResultPath"}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class TaskCall:
    """One attempt of a Task state, as a task runner sees it."""

    state: str
    resource: str
    parameters: Any
    attempt: int
    timeout_seconds: int | None


class TaskFailed(Exception):
    """Raised by a task runner: `error` is the ASL error name Retry and Catch match on."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


TaskRunner = Callable[[TaskCall], Any]


@dataclass(frozen=True)
class HistoryEvent:
    """One step of an execution, like the events in the Step Functions console."""

    kind: str
    state: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    """The outcome of a run: status, output or error and cause, and the history."""

    name: str
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)

    def visited(self) -> list[str]:
        """Names of the states entered, in order (a retried task appears once)."""
        return [event.state for event in self.history if event.kind == "StateEntered"]

    def attempts(self, state: str) -> int:
        """How many times the named Task state called its task runner."""
        return sum(
            1 for event in self.history if event.kind == "TaskStarted" and event.state == state
        )

    def retry_delays(self, state: str) -> list[float]:
        """The backoff waits scheduled for the named state, in seconds."""
        return [
            event.detail["delay_seconds"]
            for event in self.history
            if event.kind == "RetryScheduled" and event.state == state
        ]


def load_definition(
    source: str | Path | Mapping[str, Any], substitutions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read a definition (file, JSON text or mapping) and apply DefinitionSubstitutions."""
    if isinstance(source, Mapping):
        definition: Any = json.loads(json.dumps(source))
    elif isinstance(source, Path) or not str(source).lstrip().startswith("{"):
        definition = json.loads(Path(source).read_text(encoding="utf-8"))
    else:
        definition = json.loads(str(source))
    substituted: dict[str, Any] = _substitute(definition, substitutions or {})
    validate_definition(substituted)
    return substituted


def placeholders(source: str | Path | Mapping[str, Any]) -> set[str]:
    """The `${Name}` placeholders a definition expects in DefinitionSubstitutions."""
    text = source if isinstance(source, str) and source.lstrip().startswith("{") else None
    if isinstance(source, Mapping):
        text = json.dumps(source)
    elif text is None:
        text = Path(source).read_text(encoding="utf-8")
    return set(_PLACEHOLDER.findall(text))


def _substitute(value: Any, substitutions: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _substitute(item, substitutions) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, substitutions) for item in value]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in substitutions:
                raise StateMachineDefinitionError(
                    f"the definition uses ${{{name}}} but no substitution was given for it; "
                    f"pass it like CloudFormation's DefinitionSubstitutions"
                )
            return str(substitutions[name])

        return _PLACEHOLDER.sub(replace, value)
    return value


def validate_definition(definition: Mapping[str, Any]) -> None:
    """Reject constructs outside the implemented subset and dangling `Next` targets."""
    unknown = set(definition) - _TOP_LEVEL
    if unknown:
        raise StateMachineDefinitionError(f"top-level fields not supported: {sorted(unknown)}")
    states = definition.get("States") or {}
    if definition.get("StartAt") not in states:
        raise StateMachineDefinitionError(f"StartAt {definition.get('StartAt')!r} is not a state")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in _FIELDS:
            raise StateMachineDefinitionError(
                f"state {name!r}: Type {kind!r} is not implemented by the local runner "
                f"(implemented: {', '.join(_FIELDS)})"
            )
        extra = set(state) - _FIELDS[kind]
        if extra:
            raise StateMachineDefinitionError(
                f"state {name!r} ({kind}) uses {sorted(extra)}, which the local runner does "
                "not implement; extend lib/sluiceway/orchestration/asl.py or drop the field"
            )
        for retrier in state.get("Retry", []):
            _check_fields(name, "Retry", retrier, _RETRY_FIELDS)
        for catcher in state.get("Catch", []):
            _check_fields(name, "Catch", catcher, _CATCH_FIELDS)
        targets = [state.get("Next"), state.get("Default")]
        targets += [catcher["Next"] for catcher in state.get("Catch", [])]
        targets += [choice.get("Next") for choice in state.get("Choices", [])]
        for target in targets:
            if target is not None and target not in states:
                raise StateMachineDefinitionError(f"state {name!r} points at unknown {target!r}")


def _check_fields(state: str, kind: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
    extra = set(entry) - allowed
    if extra:
        raise StateMachineDefinitionError(
            f"state {state!r}: {kind} uses unsupported {sorted(extra)}"
        )


State = Mapping[str, Any]
Step = tuple[str | None, Any]


@dataclass
class _Run:
    """What every state handler needs besides its own state and data."""

    context: dict[str, Any]
    task_runner: TaskRunner
    execution: Execution
    sleep: Callable[[float], None]


def run_state_machine(
    definition: str | Path | Mapping[str, Any],
    input: Any,
    task_runner: TaskRunner,
    *,
    substitutions: Mapping[str, str] | None = None,
    execution_name: str = "local",
    sleep: Callable[[float], None] = time.sleep,
    max_transitions: int = 500,
) -> Execution:
    """Execute a definition to its end; tasks go to `task_runner`, waits to `sleep`."""
    machine = load_definition(definition, substitutions)
    execution = Execution(name=execution_name)
    context: dict[str, Any] = {
        "Execution": {
            "Id": f"arn:aws:states:local:000000000000:execution:sluiceway:{execution_name}",
            "Name": execution_name,
            "Input": input,
            "StartTime": datetime.now(UTC).isoformat(),
        },
        "StateMachine": {"Name": "sluiceway-local"},
    }
    run = _Run(context, task_runner, execution, sleep)
    name: str | None = machine["StartAt"]
    data = input
    for _ in range(max_transitions):
        if name is None:
            break
        state = machine["States"][name]
        context["State"] = {"Name": name, "EnteredTime": datetime.now(UTC).isoformat()}
        execution.history.append(HistoryEvent("StateEntered", name))
        try:
            name, data = _STEP[state["Type"]](name, state, data, run)
        except PathNotFound as error:
            return _finish(execution, "FAILED", error=RUNTIME, cause=f"state {name!r}: {error}")
        if execution.status != "RUNNING":
            return execution
    else:
        raise StateMachineDefinitionError(f"more than {max_transitions} transitions: a loop?")
    return _finish(execution, "SUCCEEDED", output=data)


def _finish(
    execution: Execution,
    status: str,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
) -> Execution:
    execution.status, execution.output = status, output
    execution.error, execution.cause = error, cause
    execution.history.append(
        HistoryEvent(f"Execution{status.title()}", "", {"error": error, "cause": cause})
    )
    return execution


def _effective_input(state: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> Any:
    path = state.get("InputPath", "$")
    return {} if path is None else read_path(path, data, context)


def _output(state: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> Any:
    path = state.get("OutputPath", "$")
    return {} if path is None else read_path(path, data, context)


def _next(state: Mapping[str, Any]) -> str | None:
    return None if state.get("End") else state["Next"]


def _pass(name: str, state: State, data: Any, run: _Run) -> Step:
    effective = _effective_input(state, data, run.context)
    if "Parameters" in state:
        result = resolve_parameters(state["Parameters"], effective, run.context)
    else:
        result = state.get("Result", effective)
    combined = write_path(state.get("ResultPath", "$"), data, result)
    return _next(state), _output(state, combined, run.context)


def _task(name: str, state: State, data: Any, run: _Run) -> Step:
    effective = _effective_input(state, data, run.context)
    parameters = resolve_parameters(state.get("Parameters", effective), effective, run.context)
    retry_counts = [0] * len(state.get("Retry", []))
    attempt = 0
    while True:
        attempt += 1
        run.context["State"]["RetryCount"] = attempt - 1
        call = TaskCall(name, state["Resource"], parameters, attempt, state.get("TimeoutSeconds"))
        run.execution.history.append(HistoryEvent("TaskStarted", name, {"attempt": attempt}))
        try:
            result = run.task_runner(call)
        except TaskFailed as failure:
            run.execution.history.append(
                HistoryEvent("TaskFailed", name, {"error": failure.error, "cause": failure.cause})
            )
            delay = _retry_delay(state.get("Retry", []), retry_counts, failure.error)
            if delay is not None:
                run.execution.history.append(
                    HistoryEvent("RetryScheduled", name, {"delay_seconds": delay})
                )
                run.sleep(delay)
                continue
            for catcher in state.get("Catch", []):
                if _matches(catcher["ErrorEquals"], failure.error):
                    run.execution.history.append(
                        HistoryEvent(
                            "Caught", name, {"error": failure.error, "next": catcher["Next"]}
                        )
                    )
                    error_output = {"Error": failure.error, "Cause": failure.cause}
                    return catcher["Next"], write_path(
                        catcher.get("ResultPath", "$"), data, error_output
                    )
            _finish(run.execution, "FAILED", error=failure.error, cause=failure.cause)
            return None, data
        run.execution.history.append(HistoryEvent("TaskSucceeded", name, {"attempt": attempt}))
        if "ResultSelector" in state:
            result = resolve_parameters(state["ResultSelector"], result, run.context)
        combined = write_path(state.get("ResultPath", "$"), data, result)
        return _next(state), _output(state, combined, run.context)


def _retry_delay(retriers: list[Mapping[str, Any]], counts: list[int], error: str) -> float | None:
    """Seconds to wait before the next attempt, or None when no retrier has attempts left."""
    for index, retrier in enumerate(retriers):
        if not _matches(retrier["ErrorEquals"], error):
            continue
        if counts[index] >= retrier.get("MaxAttempts", 3):
            return None
        delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** counts[index]
        counts[index] += 1
        return float(min(delay, retrier.get("MaxDelaySeconds", delay)))
    return None


def _matches(names: list[str], error: str) -> bool:
    if ALL_ERRORS in names or error in names:
        return True
    # States.TaskFailed is a wildcard for every error except a timeout (ASL specification).
    return TASK_FAILED in names and error != TIMEOUT


def _choice(name: str, state: State, data: Any, run: _Run) -> Step:
    effective = _effective_input(state, data, run.context)
    for rule in state["Choices"]:
        if _rule_holds(rule, effective, run.context):
            return rule["Next"], _output(state, effective, run.context)
    if "Default" not in state:
        _finish(run.execution, "FAILED", error="States.NoChoiceMatched", cause=f"state {name!r}")
        return None, data
    return state["Default"], _output(state, effective, run.context)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda value, expected: isinstance(value, str) and value == expected,
    "StringMatches": lambda value, pattern: isinstance(value, str)
    and _wildcard(pattern).fullmatch(value) is not None,
    "NumericEquals": lambda value, expected: _is_number(value) and value == expected,
    "NumericGreaterThan": lambda value, expected: _is_number(value) and value > expected,
    "NumericGreaterThanEquals": lambda value, expected: _is_number(value) and value >= expected,
    "NumericLessThan": lambda value, expected: _is_number(value) and value < expected,
    "BooleanEquals": lambda value, expected: isinstance(value, bool) and value == expected,
    "IsNull": lambda value, expected: (value is None) == expected,
    "IsString": lambda value, expected: isinstance(value, str) == expected,
}


def _wildcard(pattern: str) -> re.Pattern[str]:
    """StringMatches: `*` is any run of characters (slashes too), `\\*` a literal star and
    `\\\\` a literal backslash; nothing else is special."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            parts.append(".*" if char == "*" else re.escape(char))
    if escaped:
        raise StateMachineDefinitionError(f"StringMatches {pattern!r} ends in a lone backslash")
    return re.compile("".join(parts), re.DOTALL)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rule_holds(rule: Mapping[str, Any], data: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_rule_holds(item, data, context) for item in rule["And"])
    if "Or" in rule:
        return any(_rule_holds(item, data, context) for item in rule["Or"])
    if "Not" in rule:
        return not _rule_holds(rule["Not"], data, context)
    operators = set(rule) - {"Variable", "Next"}
    if len(operators) != 1:
        raise StateMachineDefinitionError(f"choice rule needs one comparison: {rule}")
    operator = operators.pop()
    try:
        value = read_path(rule["Variable"], data, context)
    except PathNotFound:
        if operator == "IsPresent":
            return not rule[operator]
        raise
    if operator == "IsPresent":
        return bool(rule[operator])
    if operator not in _COMPARISONS:
        raise StateMachineDefinitionError(
            f"choice operator {operator} is not implemented by the local runner"
        )
    return _COMPARISONS[operator](value, rule[operator])


def _wait(name: str, state: State, data: Any, run: _Run) -> Step:
    run.execution.history.append(HistoryEvent("WaitStarted", name, {"seconds": state["Seconds"]}))
    run.sleep(float(state["Seconds"]))
    return _next(state), _output(state, _effective_input(state, data, run.context), run.context)


def _succeed(name: str, state: State, data: Any, run: _Run) -> Step:
    output = _output(state, _effective_input(state, data, run.context), run.context)
    _finish(run.execution, "SUCCEEDED", output=output)
    return None, output


def _fail(name: str, state: State, data: Any, run: _Run) -> Step:
    error = (
        read_path(state["ErrorPath"], data, run.context)
        if "ErrorPath" in state
        else state.get("Error")
    )
    cause = (
        read_path(state["CausePath"], data, run.context)
        if "CausePath" in state
        else state.get("Cause")
    )
    _finish(run.execution, "FAILED", error=error, cause=cause)
    return None, data


_STEP: dict[str, Callable[[str, State, Any, _Run], Step]] = {
    "Pass": _pass,
    "Task": _task,
    "Choice": _choice,
    "Wait": _wait,
    "Succeed": _succeed,
    "Fail": _fail,
}
