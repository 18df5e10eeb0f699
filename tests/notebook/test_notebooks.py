"""The analyst notebooks run top to bottom against a small generated warehouse.

Parameters are injected papermill-style (a cell after the one tagged `parameters`), and the
kernel is the venv's own Python (jupyter_client maps a kernelspec's `python` to it).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


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
