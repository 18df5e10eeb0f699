"""The JSONPath subset and intrinsic functions that Step Functions evaluates in `.$` fields.

Only what sluiceway's definitions use is implemented; anything else raises
`StateMachineDefinitionError` naming the expression, so the local runner never silently
disagrees with AWS about a definition.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sluiceway.errors import SluicewayError

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")


class StateMachineDefinitionError(SluicewayError):
    """The definition uses a construct the local runner does not know, or is malformed."""


class PathNotFound(Exception):
    """A reference path points at nothing; Step Functions reports it as States.Runtime."""


def read_path(path: str, data: Any, context: Mapping[str, Any]) -> Any:
    """Value at a reference path (`$.a.b`, `$.a[0]`, `$['a-b']`, `$$.Execution.Name`)."""
    if path.startswith("$$"):
        root, rest = context, path[2:]
    elif path.startswith("$"):
        root, rest = data, path[1:]
    else:
        raise StateMachineDefinitionError(f"path {path!r} must start with $ or $$")
    value = root
    for key in _segments(path, rest):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as error:
            raise PathNotFound(f"{path}: nothing at {key!r}") from error
    return value


def write_path(path: str | None, data: Any, value: Any) -> Any:
    """`data` with `value` placed at a ResultPath (`$` replaces, None discards the result)."""
    if path is None:
        return data
    if path == "$":
        return value
    if not path.startswith("$."):
        raise StateMachineDefinitionError(f"ResultPath {path!r} must be $, null or start with $.")
    keys = _segments(path, path[1:])
    if not isinstance(data, dict):
        raise PathNotFound(f"ResultPath {path}: the state input is not a JSON object")
    result = json.loads(json.dumps(data))
    target = result
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value
    return result


def _segments(path: str, rest: str) -> list[Any]:
    keys: list[Any] = []
    position = 0
    while position < len(rest):
        match = _SEGMENT.match(rest, position)
        if not match:
            raise StateMachineDefinitionError(f"path {path!r}: cannot read {rest[position:]!r}")
        name, index, quoted = match.groups()
        keys.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    return keys


def resolve_parameters(template: Any, data: Any, context: Mapping[str, Any]) -> Any:
    """Parameters / ResultSelector: keys ending in `.$` take a path or an intrinsic function."""
    if isinstance(template, dict):
        resolved: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise StateMachineDefinitionError(f"{key}: a .$ field needs a string")
                resolved[key[:-2]] = evaluate(value, data, context)
            else:
                resolved[key] = resolve_parameters(value, data, context)
        return resolved
    if isinstance(template, list):
        return [resolve_parameters(item, data, context) for item in template]
    return template


def evaluate(expression: str, data: Any, context: Mapping[str, Any]) -> Any:
    """A `.$` value: a reference path or an intrinsic function call (possibly nested)."""
    expression = expression.strip()
    if expression.startswith("States."):
        value, end = _Parser(expression, data, context).call(0)
        if expression[end:].strip():
            raise StateMachineDefinitionError(f"unexpected text after {expression[:end]!r}")
        return value
    return read_path(expression, data, context)


class _Parser:
    """Recursive-descent reader of `States.Fn(arg, ...)` with quoted strings, numbers, paths."""

    def __init__(self, text: str, data: Any, context: Mapping[str, Any]) -> None:
        self.text, self.data, self.context = text, data, context

    def call(self, position: int) -> tuple[Any, int]:
        match = re.compile(r"(States\.[A-Za-z]+)\(").match(self.text, position)
        if not match:
            raise StateMachineDefinitionError(f"expected an intrinsic function in {self.text!r}")
        name = match.group(1)
        if name not in INTRINSICS:
            raise StateMachineDefinitionError(
                f"{name} is not implemented by the local runner (used in {self.text!r}); "
                f"implemented: {', '.join(sorted(INTRINSICS))}"
            )
        arguments: list[Any] = []
        position = self._skip_space(match.end())
        if self.text[position : position + 1] == ")":
            return INTRINSICS[name](*arguments), position + 1
        while True:
            value, position = self.argument(self._skip_space(position))
            arguments.append(value)
            position = self._skip_space(position)
            char = self.text[position : position + 1]
            if char == ")":
                return INTRINSICS[name](*arguments), position + 1
            if char != ",":
                raise StateMachineDefinitionError(f"expected , or ) at {position} in {self.text!r}")
            position += 1

    def argument(self, position: int) -> tuple[Any, int]:
        char = self.text[position : position + 1]
        if char == "'":
            return self._string(position)
        if self.text.startswith("States.", position):
            return self.call(position)
        if char == "$":
            end = position
            depth = 0
            while end < len(self.text) and (depth or self.text[end] not in ",)"):
                depth += {"[": 1, "]": -1}.get(self.text[end], 0)
                end += 1
            return read_path(self.text[position:end].strip(), self.data, self.context), end
        number = re.compile(r"-?\d+(\.\d+)?").match(self.text, position)
        if number:
            literal = number.group(0)
            return (float(literal) if "." in literal else int(literal)), number.end()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, position):
                return value, position + len(word)
        raise StateMachineDefinitionError(f"cannot read an argument at {position} in {self.text!r}")

    def _string(self, position: int) -> tuple[str, int]:
        chars: list[str] = []
        position += 1
        while position < len(self.text):
            char = self.text[position]
            if char == "\\" and position + 1 < len(self.text):
                chars.append(self.text[position + 1])
                position += 2
                continue
            if char == "'":
                return "".join(chars), position + 1
            chars.append(char)
            position += 1
        raise StateMachineDefinitionError(f"unterminated string in {self.text!r}")

    def _skip_space(self, position: int) -> int:
        while position < len(self.text) and self.text[position] == " ":
            position += 1
        return position


def _format(template: str, *values: Any) -> str:
    pieces = template.split("{}")
    if len(pieces) - 1 != len(values):
        raise StateMachineDefinitionError(
            f"States.Format({template!r}) has {len(pieces) - 1} placeholders "
            f"but {len(values)} values"
        )
    rendered = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        rendered.append(value if isinstance(value, str) else json.dumps(value))
        rendered.append(piece)
    return "".join(rendered)


def _hash(value: Any, algorithm: str) -> str:
    names = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384"}
    names["SHA-512"] = "sha512"
    if algorithm not in names:
        raise StateMachineDefinitionError(f"States.Hash: unknown algorithm {algorithm!r}")
    text = value if isinstance(value, str) else json.dumps(value)
    return hashlib.new(names[algorithm], text.encode("utf-8")).hexdigest()


def _json_merge(left: Any, right: Any, deep: bool) -> dict[str, Any]:
    if deep:
        raise StateMachineDefinitionError("States.JsonMerge: AWS supports only shallow (false)")
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise PathNotFound("States.JsonMerge needs two JSON objects")
    return {**left, **right}


def _math_add(value: Any, step: Any) -> int:
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in (value, step)):
        raise PathNotFound(f"States.MathAdd needs two integers, got {value!r} and {step!r}")
    return int(value) + int(step)


def _string_split(text: Any, delimiters: Any) -> list[str]:
    """Every character of `delimiters` divides `text` (AWS's example: `'a.b+c'` split on
    `'.+'` is `['a', 'b', 'c']`). AWS does not document what an empty piece (two delimiters
    in a row, one at either end) becomes, so the local runner refuses one rather than guess."""
    if not isinstance(text, str) or not isinstance(delimiters, str) or not delimiters:
        raise PathNotFound(f"States.StringSplit needs two strings, got {text!r}, {delimiters!r}")
    pieces = re.split("|".join(re.escape(char) for char in delimiters), text)
    if "" in pieces:
        raise PathNotFound(
            f"States.StringSplit({text!r}, {delimiters!r}) has an empty piece, which the local "
            "runner does not guess the AWS result of"
        )
    return pieces


def _array_get_item(array: Any, index: Any) -> Any:
    if not isinstance(array, list) or not isinstance(index, int) or isinstance(index, bool):
        raise PathNotFound(f"States.ArrayGetItem needs an array and an index, got {index!r}")
    if not 0 <= index < len(array):
        raise PathNotFound(f"States.ArrayGetItem: index {index} is outside {array!r}")
    return array[index]


def _array_length(array: Any) -> int:
    if not isinstance(array, list):
        raise PathNotFound(f"States.ArrayLength needs an array, got {array!r}")
    return len(array)


INTRINSICS: dict[str, Callable[..., Any]] = {
    "States.MathAdd": _math_add,
    "States.Format": _format,
    "States.Array": lambda *values: list(values),
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.StringToJson": lambda value: json.loads(value),
    "States.StringSplit": _string_split,
}
