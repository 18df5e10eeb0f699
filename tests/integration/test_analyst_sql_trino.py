"""Every analyst SQL text runs on Trino, Athena's engine, and answers as DuckDB does.

The notebooks' and the report's SQL (one text each, Athena's dialect) go through the
production Athena path (`query(..., athena=...)`: pins as `FOR VERSION AS OF`, nested values
parsed from Athena's text) with Trino answering, over the Glue tables on the local AWS stack
that Spark wrote. The same texts go through the local backend (sqlglot -> DuckDB over
pyiceberg's reads of the same tables), and both answers must be equal: same columns, same
rows, money as exact decimals on both sides.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fixtures.analytics import NOTEBOOKS, notebook_queries
from fixtures.trino_server import TIMINGS, TrinoWarehouse, duckdb_answers
from sluiceway.query import query
from sluiceway.query_athena import AthenaClient
from sluiceway.query_trino import TrinoConnection
from sluiceway.report_facts import REPORT_SQL, gather

pytestmark = [pytest.mark.trino, pytest.mark.aws_stack, pytest.mark.integration]

NOTEBOOK_SQL = {
    f"{path.stem}-{index}": sql
    for path in NOTEBOOKS
    for index, sql in enumerate(notebook_queries(path))
}
# Pinned to the first ingest, these read `transactions` / `rejected_records` as it left them.
PINNED_SQL = {
    "pinned-count": "SELECT COUNT(*) AS records, SUM(amount) AS amount FROM transactions",
    "pinned-with": (
        "WITH failed AS (SELECT * FROM transactions WHERE status = 'failed') "
        "SELECT channel, COUNT(*) AS records FROM failed GROUP BY 1 ORDER BY 1"
    ),
    "pinned-rejects": (
        "SELECT reason, COUNT(*) AS records FROM rejected_records "
        "CROSS JOIN UNNEST(reasons) AS r(reason) GROUP BY 1 ORDER BY 2 DESC, 1"
    ),
}
METADATA_SQL = {
    "snapshots": (
        "SELECT committed_at, snapshot_id, parent_id, operation, summary "
        'FROM "transactions$snapshots" ORDER BY committed_at, snapshot_id'
    ),
    # made_current_at differs by design: see the test after the comparison.
    "history": (
        "SELECT snapshot_id, parent_id, is_current_ancestor "
        'FROM "transactions$history" ORDER BY snapshot_id'
    ),
}
# approx_percentile is approximate on both engines (Trino: q-digest, DuckDB: t-digest).
APPROXIMATE = re.compile(r"approx_percentile", re.IGNORECASE)


@pytest.fixture(scope="module")
def duckdb(trino_warehouse: TrinoWarehouse, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every DuckDB answer the module compares with, computed in one process."""
    first = trino_warehouse.first_ingest
    queries: dict[str, tuple[str, str | None]] = {
        **{key: (sql, None) for key, sql in NOTEBOOK_SQL.items()},
        **{f"report-{name}": (q.render(first), None) for name, q in REPORT_SQL.items()},
        **{key: (sql, first) for key, sql in PINNED_SQL.items()},
        "current-count": (PINNED_SQL["pinned-count"], None),
        **{key: (sql, None) for key, sql in METADATA_SQL.items()},
    }
    reports = {"report-first": first, "report-latest": None}
    out = tmp_path_factory.mktemp("duckdb-answers") / "answers.pickle"
    return duckdb_answers(trino_warehouse, queries, reports, out)


@pytest.mark.parametrize("key", sorted(NOTEBOOK_SQL))
def test_notebook_query_answers_on_trino_as_on_duckdb(
    key: str, trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    sql = NOTEBOOK_SQL[key]
    on_trino = query(trino_warehouse.athena_settings, sql, athena=trino_athena)
    assert_same_answer(on_trino, duckdb[key], sql)


@pytest.mark.parametrize("name", sorted(REPORT_SQL))
def test_report_query_answers_on_trino_as_on_duckdb(
    name: str, trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    sql = REPORT_SQL[name].render(trino_warehouse.first_ingest)
    on_trino = query(trino_warehouse.athena_settings, sql, athena=trino_athena)
    assert_same_answer(on_trino, duckdb[f"report-{name}"], sql)
    assert len(on_trino) >= (name != "failures_by_class"), f"{name} returned no rows: {sql}"


@pytest.mark.parametrize("key", sorted(PINNED_SQL))
def test_query_pinned_to_an_ingest_reads_its_snapshots_on_trino(
    key: str, trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    sql = PINNED_SQL[key]
    settings = trino_warehouse.athena_settings
    on_trino = query(settings, sql, trino_warehouse.first_ingest, athena=trino_athena)
    assert_same_answer(on_trino, duckdb[key], sql)


def test_pinned_count_is_the_first_ingests_not_the_current_one(
    trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    sql, built = PINNED_SQL["pinned-count"], trino_warehouse
    pinned = query(built.athena_settings, sql, built.first_ingest, athena=trino_athena)
    current = query(built.athena_settings, sql, athena=trino_athena)
    assert int(pinned.iloc[0, 0]) == built.first_accepted
    assert int(current.iloc[0, 0]) == built.first_accepted + built.second_accepted
    assert_same_answer(current, duckdb["current-count"], sql)


def test_for_version_as_of_a_snapshot_id_reads_that_snapshot(
    trino_warehouse: TrinoWarehouse, trino_connection: TrinoConnection
) -> None:
    built = trino_warehouse
    (snapshot,) = trino_connection.frame(
        "SELECT transactions_snapshot_id FROM ingest_ledger "
        f"WHERE ingest_id = '{built.first_ingest}' AND status = 'completed'"
    ).iloc[:, 0]
    at = trino_connection.frame(
        f"SELECT COUNT(*) AS records FROM transactions FOR VERSION AS OF {int(snapshot)}"
    )
    assert int(at.iloc[0, 0]) == built.first_accepted
    rows = built.namespace.read_table("transactions").num_rows
    assert rows == built.first_accepted + built.second_accepted


@pytest.mark.parametrize("key", sorted(METADATA_SQL))
def test_metadata_table_lists_the_same_snapshots_on_trino_as_pyiceberg(
    key: str, trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    sql = METADATA_SQL[key]
    on_trino = query(trino_warehouse.athena_settings, sql, athena=trino_athena)
    assert len(on_trino) >= 2, "two ingests, at least two snapshots"
    assert_same_answer(on_trino, duckdb[key], sql)


def test_trinos_history_dates_each_snapshot_by_its_commit_not_its_publication(
    trino_connection: TrinoConnection,
) -> None:
    """Trino (so Athena) lists every snapshot with `made_current_at` = its commit time; the
    local backend (pyiceberg) gives the snapshot log's time, when write-audit-publish made the
    staged snapshot current, a second or so later. No analyst query reads made_current_at."""
    frame = trino_connection.frame(
        "SELECT h.made_current_at = s.committed_at AS same, s.committed_at IS NOT NULL AS known "
        'FROM "transactions$history" h LEFT JOIN "transactions$snapshots" s '
        "ON s.snapshot_id = h.snapshot_id"
    )
    assert len(frame) >= 2 and frame["known"].all() and frame["same"].all()


@pytest.mark.parametrize("ingest", ["first", "latest"])
def test_report_facts_on_trino_equal_those_on_duckdb(
    ingest: str, trino_warehouse: TrinoWarehouse, trino_athena: AthenaClient, duckdb: dict
) -> None:
    ingest_id = trino_warehouse.first_ingest if ingest == "first" else None
    on_trino = asdict(gather(trino_warehouse.athena_settings, ingest_id, athena=trino_athena))
    on_duckdb = asdict(duckdb[f"report-{ingest}"])
    assert _same(_normal(on_trino), _normal(on_duckdb), 1e-9), _difference(on_trino, on_duckdb)
    assert on_trino["ingest_id"] == (ingest_id or trino_warehouse.second_ingest)


def test_trino_timings_are_reported(trino_warehouse: TrinoWarehouse, trino) -> None:
    """Fetch, startup and set-up seconds, for the ADR and CI's log (`pytest -s`)."""
    print("\n" + ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(TIMINGS.items())))
    assert TIMINGS["startup_seconds"] < 240


# --- comparing answers ------------------------------------------------------------------------


def assert_same_answer(on_trino: pd.DataFrame, on_duckdb: Any, sql: str) -> None:
    """Same column names, same rows (in order when the query orders), equal values: decimals
    exactly and as decimals on both sides, floats to rounding (or to the approximation)."""
    assert isinstance(on_duckdb, pd.DataFrame), f"DuckDB failed: {on_duckdb}\nSQL: {sql}"
    assert list(on_trino.columns) == list(on_duckdb.columns), sql
    trino_rows = [_normal(row) for row in on_trino.itertuples(index=False)]
    duckdb_rows = [_normal(row) for row in on_duckdb.itertuples(index=False)]
    if not re.search(r"\bORDER\s+BY\b[^()]*$", sql, re.IGNORECASE):
        trino_rows, duckdb_rows = sorted(trino_rows, key=repr), sorted(duckdb_rows, key=repr)
    tolerance = 0.02 if APPROXIMATE.search(sql) else 1e-9
    assert len(trino_rows) == len(duckdb_rows), (
        f"{len(trino_rows)} rows on Trino, {len(duckdb_rows)} on DuckDB\nSQL: {sql}"
    )
    for index, (left, right) in enumerate(zip(trino_rows, duckdb_rows, strict=True)):
        assert _same(left, right, tolerance), (
            f"row {index} differs\n  Trino:  {left}\n  DuckDB: {right}\nSQL: {sql}"
        )


def _normal(value: Any) -> Any:
    """Plain Python values: numpy scalars unwrapped, missing values as None, UTC timestamps."""
    if isinstance(value, tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | np.ndarray):
        return [_normal(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    return value


def _same(left: Any, right: Any, tolerance: float) -> bool:
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        # Money stays exact: a DECIMAL on one engine and a float on the other is a difference.
        return (
            isinstance(left, Decimal | int) and isinstance(right, Decimal | int) and (left == right)
        )
    if isinstance(left, float) or isinstance(right, float):
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return False
        return math.isclose(left, right, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(left, tuple | list) and isinstance(right, tuple | list):
        return len(left) == len(right) and all(
            _same(a, b, tolerance) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            _same(left[k], right[k], tolerance) for k in left
        )
    return bool(type(left) is type(right) and left == right) or (
        isinstance(left, bool | int) and isinstance(right, bool | int) and left == right
    )


def _difference(left: Mapping[str, Any], right: Mapping[str, Any]) -> str:
    keys = sorted(set(left) | set(right))
    return "\n".join(
        f"  {k}: Trino {left.get(k)!r} / DuckDB {right.get(k)!r}"
        for k in keys
        if not _same(_normal(left.get(k)), _normal(right.get(k)), 1e-9)
    )
