"""The state machine that AWS runs, runnable offline: the ASL runner and its local task runner.

Its names are imported on first use: the late-file Lambda (`late_file`) lives in this package
and its runtime has boto3 and the standard library only, not the settings and feeds the
runner needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.orchestration.asl import (
        Execution,
        TaskCall,
        TaskFailed,
        load_definition,
        run_state_machine,
    )
    from sluiceway.orchestration.local_tasks import LocalTaskRunner, local_substitutions
    from sluiceway.orchestration.paths import StateMachineDefinitionError
    from sluiceway.orchestration.pipeline import (
        PIPELINE_DEFINITION,
        STARTER_DEFINITION,
        run_pipeline,
    )

_HOMES = {
    "Execution": "asl",
    "TaskCall": "asl",
    "TaskFailed": "asl",
    "load_definition": "asl",
    "run_state_machine": "asl",
    "LocalTaskRunner": "local_tasks",
    "local_substitutions": "local_tasks",
    "StateMachineDefinitionError": "paths",
    "PIPELINE_DEFINITION": "pipeline",
    "STARTER_DEFINITION": "pipeline",
    "run_pipeline": "pipeline",
}
__all__ = [
    "PIPELINE_DEFINITION",
    "STARTER_DEFINITION",
    "Execution",
    "LocalTaskRunner",
    "StateMachineDefinitionError",
    "TaskCall",
    "TaskFailed",
    "load_definition",
    "local_substitutions",
    "run_pipeline",
    "run_state_machine",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module = importlib.import_module(f"sluiceway.orchestration.{_HOMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
