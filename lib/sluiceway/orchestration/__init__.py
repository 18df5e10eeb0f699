"""The state machine that AWS runs, runnable offline: the ASL runner and its local task runner."""

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
