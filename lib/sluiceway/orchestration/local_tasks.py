"""The task runner that maps the definition's AWS task resources to local job runs.

A Glue or EMR Serverless job becomes `python jobs/<script>.py <the same --name value args>`,
a Batch job runs the container command it would run on AWS (`python3 jobs/<script>.py ...`)
with this interpreter, SNS messages and CloudWatch metrics are kept in lists, and the S3 read
of a job's outcome reads the local file the job wrote (`OutcomeBucket` is a folder offline).
Exit code 0 is success, anything else is `States.TaskFailed` (what a failed Glue run or Batch
job reports), and a job that outlives the state's `TimeoutSeconds` is `States.Timeout`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluiceway.errors import ConfigurationError
from sluiceway.locations import is_s3
from sluiceway.logs import get_logger, log_event
from sluiceway.orchestration.asl import TIMEOUT, TaskCall, TaskFailed
from sluiceway.settings import Settings

GLUE_JOB = "arn:aws:states:::glue:startJobRun.sync"
EMR_SERVERLESS_JOB = "arn:aws:states:::emr-serverless:startJobRun.sync"
BATCH_JOB = "arn:aws:states:::batch:submitJob.sync"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
PUT_METRIC_DATA = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
GET_OBJECT = "arn:aws:states:::aws-sdk:s3:getObject"
NO_SUCH_KEY = "S3.NoSuchKeyException"

INGEST_JOB_NAME = "sluiceway-ingest"
PROCESS_JOB_NAME = "sluiceway-process"
JOB_SCRIPTS = {
    INGEST_JOB_NAME: "jobs/ingest_landing.py",
    PROCESS_JOB_NAME: "jobs/process_records.py",
}
ENGINES = ("glue", "emr-serverless")
STDERR_TAIL_LINES = 20

LOGGER = get_logger(__name__)


def local_substitutions(settings: Settings, engine: str = "glue") -> dict[str, str]:
    """DefinitionSubstitutions for an offline run: the values CloudFormation fills in on AWS."""
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    outcomes = outcome_folder(settings)
    return {
        "Engine": engine,
        "IngestJobName": INGEST_JOB_NAME,
        "ProcessJobName": PROCESS_JOB_NAME,
        "WarehouseUri": settings.warehouse,
        "Namespace": settings.namespace,
        "ArtifactsUri": "local",
        "EmrApplicationId": "local",
        "EmrJobRoleArn": "local",
        "EmrSparkSubmitParameters": "",
        "BatchJobQueueArn": "local",
        "BatchJobDefinitionArn": "local",
        "FailureTopicArn": "local",
        "OutcomeBucket": outcomes,
        "OutcomeStore": outcomes,
    }


def outcome_folder(settings: Settings) -> str:
    """Where offline jobs write their outcomes: beside a local warehouse, else a temp folder."""
    if is_s3(settings.warehouse):
        return str(Path(tempfile.gettempdir()) / "sluiceway-outcomes")
    return str(Path(settings.warehouse).resolve())


@dataclass
class LocalTaskRunner:
    """Runs Glue / EMR Serverless / Batch tasks as job subprocesses in `workdir`.

    Glue and EMR Serverless runs get `settings.profile` (normally `local`) in place of their
    cloud profile, because their catalog does not exist offline; a Batch run keeps the
    `batch` profile of its container command, which is Spark local mode already.
    """

    workdir: Path
    settings: Settings
    python: str = sys.executable
    scripts: Mapping[str, str] = field(default_factory=lambda: dict(JOB_SCRIPTS))
    notifications: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def __call__(self, call: TaskCall) -> Any:
        if call.resource == GLUE_JOB:
            return self._run_job(call, self._glue_command(call.parameters))
        if call.resource == EMR_SERVERLESS_JOB:
            return self._run_job(call, self._emr_command(call.parameters))
        if call.resource == BATCH_JOB:
            return self._run_job(call, self._batch_command(call.parameters))
        if call.resource == SNS_PUBLISH:
            self.notifications.append(dict(call.parameters))
            log_event(LOGGER, "failure notification", state=call.state, **call.parameters)
            return {"MessageId": f"local-{len(self.notifications)}"}
        if call.resource == PUT_METRIC_DATA:
            self.metrics.extend(call.parameters["MetricData"])
            return {}
        if call.resource == GET_OBJECT:
            return _read_outcome(call.parameters)
        raise ConfigurationError(
            f"state {call.state!r}: the local runner has no mapping for resource "
            f"{call.resource!r}; add one to sluiceway.orchestration.local_tasks"
        )

    def _script(self, name: str, state: str) -> Path:
        script = self.workdir / name
        if not script.is_file():
            raise ConfigurationError(
                f"state {state!r} runs {name}, which is not under {self.workdir.resolve()}; "
                "run from the repository root or pass the folder that holds jobs/"
            )
        return script

    def _glue_command(self, parameters: Mapping[str, Any]) -> list[str]:
        job = parameters["JobName"]
        if job not in self.scripts:
            raise ConfigurationError(
                f"Glue job {job!r} has no local script; known: {', '.join(self.scripts)}"
            )
        arguments = [str(item) for pair in parameters.get("Arguments", {}).items() for item in pair]
        return [self.python, self.scripts[job], *arguments, *self._engine_defaults()]

    def _emr_command(self, parameters: Mapping[str, Any]) -> list[str]:
        driver = parameters["JobDriver"]["SparkSubmit"]
        script = "jobs/" + driver["EntryPoint"].rsplit("/", 1)[-1]
        arguments = _replace_option(
            driver.get("EntryPointArguments", []), "--profile", self.settings.profile
        )
        return [self.python, script, *arguments]

    def _batch_command(self, parameters: Mapping[str, Any]) -> list[str]:
        command = [str(item) for item in parameters["ContainerOverrides"]["Command"]]
        if not command or not command[0].startswith("python"):
            raise ConfigurationError(f"Batch command must start with python, got {command[:2]}")
        return [self.python, *command[1:]]

    def _engine_defaults(self) -> list[str]:
        """What the Glue job's DefaultArguments supply on AWS, with the local profile."""
        return [
            "--profile", self.settings.profile,
            "--warehouse", self.settings.warehouse,
            "--namespace", self.settings.namespace,
        ]  # fmt: skip

    def _run_job(self, call: TaskCall, command: list[str]) -> dict[str, Any]:
        self._script(command[1], call.state)
        if self.settings.feeds_dir:
            # An operator's feed files, which every job of the offline run reads its feed from.
            command = [*command, "--feeds-dir", self.settings.feeds_dir]
        self.commands.append(command)
        log_event(LOGGER, "job started", state=call.state, attempt=call.attempt, command=command)
        try:
            finished = subprocess.run(
                command,
                cwd=self.workdir,
                capture_output=True,
                text=True,
                timeout=call.timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise TaskFailed(
                TIMEOUT, f"{command[1]} ran longer than {call.timeout_seconds} s"
            ) from error
        if finished.returncode != 0:
            tail = finished.stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
            cause = {"Job": command[1], "ExitCode": finished.returncode, "StderrTail": tail}
            raise TaskFailed("States.TaskFailed", json.dumps(cause))
        log_event(LOGGER, "job succeeded", state=call.state, attempt=call.attempt)
        return {"JobRunState": "SUCCEEDED", "Job": command[1], "ExitCode": 0}


def _read_outcome(parameters: Mapping[str, Any]) -> dict[str, Any]:
    path = Path(parameters["Bucket"]) / parameters["Key"]
    if not path.is_file():
        raise TaskFailed(NO_SUCH_KEY, f"The specified key does not exist: {parameters['Key']}")
    return {"Body": path.read_text(encoding="utf-8"), "ContentType": "application/json"}


def _replace_option(arguments: Sequence[Any], name: str, value: str) -> list[str]:
    result = [str(item) for item in arguments]
    for index, item in enumerate(result[:-1]):
        if item == name:
            result[index + 1] = value
    return result
