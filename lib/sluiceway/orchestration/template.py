"""Render a CloudFormation template: inline each state machine definition file it names.

The definitions live in their own files (so the local runner and asl-validator read exactly
what AWS runs), but cfn-lint only checks inside a state machine given as an inline
`Definition`. A template line `Definition: <path>.asl.json` is replaced by that file's JSON,
which is valid YAML flow syntax; everything else is copied byte for byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sluiceway.errors import ConfigurationError

_INCLUDE = re.compile(r"^(?P<indent>\s*)Definition:\s+(?P<path>\S+\.asl\.json)\s*(#.*)?$")


def render_template(template: Path, output: Path) -> list[Path]:
    """Write `template` to `output` with definitions inlined; returns the files inlined."""
    inlined: list[Path] = []
    lines: list[str] = []
    for number, line in enumerate(template.read_text(encoding="utf-8").splitlines(), start=1):
        match = _INCLUDE.match(line)
        if not match:
            lines.append(line)
            continue
        path = (template.parent / match["path"]).resolve()
        if not path.is_file():
            raise ConfigurationError(
                f"{template}:{number}: Definition names {match['path']}, which does not exist"
            )
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"{path}: not valid JSON ({error}); fix the file") from error
        indent = match["indent"]
        body = json.dumps(definition, indent=2).splitlines()
        lines.append(f"{indent}Definition:")
        lines.extend(f"{indent}  {text}" for text in body)
        inlined.append(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return inlined
