"""The analyst notebooks run top to bottom against a small generated warehouse.

Parameters are injected papermill-style (a cell after the one tagged `parameters`), and the
kernel is the venv's own Python (jupyter_client maps a kernelspec's `python` to it). Their SQL
is checked as Athena's dialect in tests/integration/test_analyst_sql.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from fixtures.analytics import NOTEBOOKS
from sluiceway.query import STACK_DATABASE, STACK_WORKGROUP

pytestmark = pytest.mark.notebook


def _inject(notebook: nbformat.NotebookNode, parameters: dict[str, object]) -> None:
    (index,) = [
        i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])
    ]
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, cell)


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(value) for value in output.get("data", {}).values())
    return "\n".join(parts)


def test_three_notebooks_are_committed() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "daily_overview.ipynb",
        "data_quality.ipynb",
        "processing.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert dirty == [], f"{path.name}: strip outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_against_generated_warehouse(
    path: Path, analytics_warehouse, tmp_path: Path
) -> None:
    notebook = nbformat.read(path, as_version=4)
    settings = analytics_warehouse.settings
    _inject(
        notebook,
        {
            "warehouse": settings.warehouse,
            "namespace": settings.namespace,
            "ingest_id": analytics_warehouse.ingest_id,
        },
    )
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    text = _outputs_text(notebook)
    assert "<svg" in text, f"{path.name} drew no chart"
    expected = {
        "daily_overview": "failed_pct",
        "data_quality": "reconciled",
        "processing": "max_attempts",
    }[path.stem]
    assert expected in text


def _settings_cells(path: Path, parameters: dict[str, object]) -> dict[str, object]:
    """Run a notebook's parameters and settings cells (no query) and return its variables."""
    notebook = nbformat.read(path, as_version=4)
    _inject(notebook, parameters)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    variables: dict[str, object] = {}
    for source in code[:3]:
        exec(compile(source, path.name, "exec"), variables)
    return variables


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_takes_athena_workgroup_and_database_from_the_environment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = {"warehouse": "s3://warehouse-bucket/iceberg"}
    monkeypatch.delenv("SLUICEWAY_ATHENA_WORKGROUP", raising=False)
    monkeypatch.delenv("SLUICEWAY_NAMESPACE", raising=False)
    stack = _settings_cells(path, s3)["settings"]
    assert (stack.athena_workgroup, stack.namespace) == (STACK_WORKGROUP, STACK_DATABASE)

    monkeypatch.setenv("SLUICEWAY_ATHENA_WORKGROUP", "team-wg")
    monkeypatch.setenv("SLUICEWAY_NAMESPACE", "sluiceway_prod")
    from_env = _settings_cells(path, s3)["settings"]
    assert (from_env.athena_workgroup, from_env.namespace) == ("team-wg", "sluiceway_prod")

    given = _settings_cells(path, {**s3, "athena_workgroup": "wg-param", "namespace": "db_param"})
    assert (given["settings"].athena_workgroup, given["settings"].namespace) == (
        "wg-param",
        "db_param",
    )
