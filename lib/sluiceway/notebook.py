"""The setup every analyst notebook shares: settings, one SQL helper, one chart helper.

Why in the library: the three notebooks in notebooks/ had the same twenty-line cell, so a
fix reached one of them and not the others. Each now starts with `start_analysis(...)` and
keeps only its own questions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluiceway.query import analyst_settings, is_athena, query
from sluiceway.report import bar_chart
from sluiceway.settings import Settings

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Analysis:
    """The settings a notebook reads with, and the ingest it is pinned to (None: latest)."""

    settings: Settings
    ingest_id: str | None = None

    def describe(self) -> str:
        """Where the queries run, in one line."""
        settings = self.settings
        if is_athena(settings):
            return f"Athena workgroup {settings.athena_workgroup}, database {settings.namespace}"
        return f"DuckDB over {settings.warehouse}, namespace {settings.namespace}"

    def sql(self, text: str) -> pd.DataFrame:
        """Athena (Trino) SQL: on Athena for an s3:// warehouse, transpiled to DuckDB locally."""
        return query(self.settings, text, ingest_id=self.ingest_id)

    def chart(self, title: str, frame: pd.DataFrame) -> None:
        """Bar chart of a two-column frame (label, count), shown as inline SVG."""
        from IPython.display import SVG, display

        pairs = [(str(label), int(value)) for label, value in frame.itertuples(index=False)]
        display(SVG(bar_chart(title, pairs)))  # type: ignore[no-untyped-call]  # IPython is untyped


def start_analysis(
    environ: Mapping[str, str],
    *,
    profile: str | None = None,
    warehouse: str | None = None,
    namespace: str | None = None,
    athena_workgroup: str | None = None,
    ingest_id: str | None = None,
) -> Analysis:
    """The notebook's parameters (None: from SLUICEWAY_* in `environ`, else the defaults).

    Prints where the queries will run, so a notebook's first output says which tables it read.
    """
    settings = analyst_settings(
        environ,
        profile=profile,
        warehouse=warehouse,
        namespace=namespace,
        athena_workgroup=athena_workgroup,
    )
    analysis = Analysis(settings, ingest_id)
    print(analysis.describe())
    return analysis
