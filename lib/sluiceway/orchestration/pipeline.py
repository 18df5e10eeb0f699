"""The deployed definitions and the one call that runs the pipeline offline with local jobs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.orchestration.asl import Execution, run_state_machine
from sluiceway.orchestration.local_tasks import LocalTaskRunner, local_substitutions
from sluiceway.settings import Settings

# The repository checkout: the definitions live in infra/, next to the templates that deploy them.
REPOSITORY = Path(__file__).resolve().parents[3]
PIPELINE_DEFINITION = REPOSITORY / "infra" / "statemachine" / "pipeline.asl.json"
STARTER_DEFINITION = REPOSITORY / "infra" / "statemachine" / "starter.asl.json"


def run_pipeline(
    settings: Settings,
    source: str,
    *,
    source_version: str | None = None,
    engine: str = "glue",
    workdir: Path = REPOSITORY,
    definition: Path = PIPELINE_DEFINITION,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Execution, LocalTaskRunner]:
    """Follow the deployed definition for one landing file of `settings.feed`, every job
    run locally (on AWS the starter reads the feed from the key's folder)."""
    if not definition.is_file():
        raise ConfigurationError(
            f"state machine definition {definition} not found; run from a checkout of the "
            "repository (the definition is in infra/statemachine/) or pass its path"
        )
    runner = LocalTaskRunner(workdir=workdir, settings=settings)
    job = {"source": source, "feed": settings.feed}
    if source_version:
        job["source_version"] = source_version
    name = "local-" + hashlib.sha256(f"{source}?versionId={source_version}".encode()).hexdigest()
    execution = run_state_machine(
        definition,
        job,
        runner,
        substitutions=local_substitutions(settings, engine),
        execution_name=name[:80],
        sleep=sleep,
    )
    return execution, runner
