"""Render a CloudFormation template: inline the state machine definitions and the Spark conf.

The definitions live in their own files (so the local runner and asl-validator read exactly
what AWS runs), but cfn-lint only checks inside a state machine given as an inline
`Definition`. A template line `Definition: <path>.asl.json` is replaced by that file's JSON,
which is valid YAML flow syntax.

The Spark conf a driver needs at start (`sluiceway.spark.startup_conf`) is written once, in
Python, and rendered where the template says `{{glue-conf:PROFILE}}` (Glue's `--conf` value:
`k=v --conf k=v ...`) or `{{spark-submit-conf:PROFILE}}` (`--conf k=v --conf k=v ...`, the EMR
Serverless sparkSubmitParameters). The warehouse appears as `${Warehouse}`, so the token sits
inside an `!Sub` that maps `Warehouse` to the bucket. `"{{glue-conf-argument:PROFILE}}"`, quotes
included, becomes that whole `!Sub` (as JSON), so each Glue job's `--conf` is one template line
and the argument is defined here once. Everything else is copied byte for byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.settings import load_settings
from sluiceway.spark import startup_conf

_INCLUDE = re.compile(r"^(?P<indent>\s*)Definition:\s+(?P<path>\S+\.asl\.json)\s*(#.*)?$")
_CONF_TOKEN = re.compile(r"\{\{(?P<style>[a-z-]+):(?P<profile>[a-z-]+)\}\}")
# A quoted YAML string in the template (so the template itself stays valid YAML), a mapping
# once rendered.
_ARGUMENT_TOKEN = re.compile(r'"\{\{(?P<style>glue-conf-argument):(?P<profile>[a-z-]+)\}\}"')
CONF_STYLES = ("glue-conf", "spark-submit-conf")
# The rendered conf's warehouse is an Fn::Sub variable the template maps to the bucket.
TEMPLATE_WAREHOUSE = "s3://${Warehouse}/"
# The bucket behind `${Warehouse}`: the storage stack's export, as pipeline.yaml imports it.
WAREHOUSE_BUCKET = {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-WarehouseBucket"}}


def rendered_conf(style: str, profile: str) -> str:
    """The startup conf of a profile as Glue's `--conf` value or as spark-submit parameters."""
    if style not in CONF_STYLES:
        raise ConfigurationError(f"unknown conf style {style!r}; use one of {CONF_STYLES}")
    settings = load_settings(arguments={"profile": profile, "warehouse": TEMPLATE_WAREHOUSE})
    pairs = [f"{key}={value}" for key, value in startup_conf(settings).items()]
    if style == "glue-conf":
        # Glue takes one `--conf` argument; the further pairs ride in its value.
        return " --conf ".join(pairs)
    return " ".join(f"--conf {pair}" for pair in pairs)


def glue_conf_argument(profile: str) -> str:
    """A Glue job's whole `--conf` default argument: the conf in an `Fn::Sub` that maps
    `Warehouse` to the warehouse bucket, as JSON (valid YAML flow syntax)."""
    conf = rendered_conf("glue-conf", profile)
    return json.dumps({"Fn::Sub": [conf, {"Warehouse": WAREHOUSE_BUCKET}]})


def render_template(template: Path, output: Path) -> list[Path]:
    """Write `template` to `output` with definitions and conf inlined; returns the files inlined."""
    inlined: list[Path] = []
    lines: list[str] = []
    for number, line in enumerate(template.read_text(encoding="utf-8").splitlines(), start=1):
        line = _render_conf(line, f"{template}:{number}")
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


def _render_conf(line: str, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        try:
            if match["style"] == "glue-conf-argument":
                return glue_conf_argument(match["profile"])
            return rendered_conf(match["style"], match["profile"])
        except ConfigurationError as error:
            raise ConfigurationError(f"{where}: {match.group(0)}: {error}") from error

    return _CONF_TOKEN.sub(replace, _ARGUMENT_TOKEN.sub(replace, line))
