"""Every notebook and report query is Athena (Trino) SQL and runs on DuckDB through sqlglot.

One text per query: the test reads the SQL out of the committed notebooks and the report's
REPORT_SQL, checks it as Trino, and runs it with the query helper over the generated warehouse.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from fixtures.analytics import NOTEBOOKS, assert_athena_sql, notebook_queries
from sluiceway.cli import main
from sluiceway.query import query
from sluiceway.report_facts import REPORT_SQL

pytestmark = pytest.mark.integration

ANALYST_SQL = [
    pytest.param(sql, id=f"{path.stem}-{index}")
    for path in NOTEBOOKS
    for index, sql in enumerate(notebook_queries(path))
]
REPORT_NAMES = sorted(REPORT_SQL)


def test_notebooks_hold_analyst_sql() -> None:
    assert len(ANALYST_SQL) >= 12


@pytest.mark.parametrize("sql", ANALYST_SQL)
def test_notebook_query_is_trino_and_runs_on_duckdb(sql: str, analytics_warehouse) -> None:
    assert_athena_sql(sql)
    frame = query(analytics_warehouse.settings, sql)
    assert list(frame.columns), sql


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_report_query_is_trino_and_runs_on_duckdb(name: str, analytics_warehouse) -> None:
    sql = REPORT_SQL[name].render(analytics_warehouse.ingest_id)
    assert_athena_sql(sql)
    frame = query(analytics_warehouse.settings, sql)
    # The generated run has no dead letters; every other query has rows to show.
    assert len(frame) >= (name != "failures_by_class"), f"{name} returned no rows: {sql}"


def test_snapshots_metadata_table_lists_the_ingests_commit(analytics_warehouse) -> None:
    built = analytics_warehouse
    ledger = query(
        built.settings,
        f"SELECT transactions_snapshot_id FROM ingest_ledger WHERE ingest_id = '{built.ingest_id}'",
    )
    sql = (
        "SELECT snapshot_id, operation, element_at(summary, 'added-records') AS added "
        'FROM "transactions$snapshots" WHERE snapshot_id = '
        f"{int(ledger.iloc[0, 0])}"
    )
    assert_athena_sql(sql)
    ((snapshot_id, operation, added),) = query(built.settings, sql).itertuples(index=False)
    assert operation == "append" and int(added) == built.accepted
    history = query(built.settings, 'SELECT snapshot_id FROM "transactions$history"')
    assert snapshot_id in set(history["snapshot_id"])


def test_arrays_and_maps_come_back_as_lists_and_dicts(analytics_warehouse) -> None:
    built = analytics_warehouse
    ledger = query(
        built.settings,
        "SELECT rejected_by_reason, accepted_amount_by_currency FROM ingest_ledger "
        f"WHERE ingest_id = '{built.ingest_id}'",
    ).iloc[0]
    assert sum(ledger["rejected_by_reason"].values()) >= built.rejected
    assert all(isinstance(v, Decimal) for v in ledger["accepted_amount_by_currency"].values())
    reasons = query(
        built.settings, "SELECT reasons FROM rejected_records WHERE cardinality(reasons) > 0"
    )["reasons"]
    assert all(isinstance(value, list) and value for value in reasons)


def test_sluiceway_query_prints_table_sums_exactly_as_the_ledger(analytics_warehouse, capsys):
    built = analytics_warehouse
    totals = query(
        built.settings,
        "SELECT accepted_amount_by_currency FROM ingest_ledger "
        f"WHERE ingest_id = '{built.ingest_id}'",
    ).iloc[0, 0]
    code = main(
        [
            "query",
            "SELECT currency, SUM(amount) AS amount FROM transactions GROUP BY 1 ORDER BY 1",
            "--format",
            "json",
            "--warehouse",
            built.settings.warehouse,
            "--namespace",
            built.settings.namespace,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    rows = json.loads(printed, parse_float=Decimal)
    assert {row["currency"]: row["amount"] for row in rows} == totals
    for amount in totals.values():
        assert f": {amount:f}" in printed  # all digits, e.g. 60797.70 not 60797.7
