"""The query helper's Athena path, its SQL rewriting and parsing, and exact money output.

Athena has no local equivalent (moto's Athena returns canned rows without running SQL), so the
Athena path is tested with a recording stand-in for the two awswrangler calls: the test checks
the SQL the helper would send (Trino, one text per query), the workgroup and the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from fixtures.analytics import RecordingAthena, assert_athena_sql
from sluiceway.cli import main
from sluiceway.query import STACK_DATABASE, STACK_WORKGROUP, analyst_settings, query
from sluiceway.query_athena import parse_athena_value, type_nested_columns
from sluiceway.query_dialect import pin_athena_sql
from sluiceway.query_output import format_frame
from sluiceway.report import render
from sluiceway.report_facts import REPORT_SQL, gather
from sluiceway.settings import load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[2]
S3 = load_settings(
    arguments={
        "warehouse": "s3://warehouse-bucket/iceberg",
        "namespace": "sluiceway_test",
        "athena_workgroup": "analysts-wg",
    }
)


def _cte_names(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, read="trino")
    return [cte.alias for cte in tree.find_all(exp.CTE)]


def test_pin_wraps_a_plain_select_in_trino_named_queries() -> None:
    pinned = pin_athena_sql("SELECT COUNT(*) FROM transactions", {"transactions": 42}, "db")
    assert pinned == (
        'WITH transactions AS (SELECT * FROM "db".transactions FOR VERSION AS OF 42) '
        "SELECT COUNT(*) FROM transactions"
    )
    assert_athena_sql(pinned)


def test_pin_joins_the_with_list_of_a_query_that_has_one() -> None:
    sql = (
        "-- failed by channel\n"
        "with failed AS (SELECT * FROM transactions WHERE status = 'failed') "
        "SELECT channel, COUNT(*) FROM failed GROUP BY 1"
    )
    pinned = pin_athena_sql(sql, {"transactions": 7, "rejected_records": 9}, "db")
    assert_athena_sql(pinned)
    assert pinned.count("WITH") + pinned.count("with") == 1
    assert _cte_names(pinned) == ["transactions", "rejected_records", "failed"]
    assert pinned.startswith("-- failed by channel\nWITH transactions AS")
    assert pinned.endswith("SELECT channel, COUNT(*) FROM failed GROUP BY 1")


def test_pin_keeps_recursive_in_front() -> None:
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT * FROM n"
    )
    pinned = pin_athena_sql(sql, {"transactions": 1}, "db")
    assert pinned.startswith("WITH RECURSIVE transactions AS (")
    assert _cte_names(pinned) == ["transactions", "n"]


def test_athena_text_of_arrays_and_maps_parses_to_lists_and_dicts() -> None:
    assert parse_athena_value("[bad_amount_format, bad_event_time]") == [
        "bad_amount_format",
        "bad_event_time",
    ]
    assert parse_athena_value("[]") == []
    assert parse_athena_value("{}") == {}
    assert parse_athena_value("[[a, b], [], [null]]") == [["a", "b"], [], [None]]
    assert parse_athena_value("{EUR=60797.70, USD=-3.10}", Decimal) == {
        "EUR": Decimal("60797.70"),
        "USD": Decimal("-3.10"),
    }
    assert parse_athena_value("{k=[1, 2], j=[]}", int) == {"k": [1, 2], "j": []}
    assert parse_athena_value(None) is None
    with pytest.raises(ValueError, match="expected"):
        parse_athena_value("[a, b")


def test_nested_columns_are_typed_by_the_tables_element_types() -> None:
    frame = pd.DataFrame(
        {
            "rejected_by_reason": ["{bad_mcc=4, bad_quoting=8}", None],
            "accepted_amount_by_currency": ["{EUR=10.10}", "{}"],
            "reasons": ["[bad_mcc]", "[]"],
            "tags": ["[1, 2]", "[3]"],
            "label": ["[not, an, array]", "x"],
        }
    )
    types = {
        "rejected_by_reason": "map",
        "accepted_amount_by_currency": "map",
        "reasons": "array",
        "tags": "array",
        "label": "varchar",
    }
    typed = type_nested_columns(frame, types)
    assert typed["rejected_by_reason"].tolist() == [{"bad_mcc": 4, "bad_quoting": 8}, None]
    assert typed["accepted_amount_by_currency"][0] == {"EUR": Decimal("10.10")}
    assert typed["reasons"].tolist() == [["bad_mcc"], []]
    assert typed["tags"].tolist() == [["1", "2"], ["3"]]  # unknown column: elements as text
    assert typed["label"][0] == "[not, an, array]"


def test_athena_query_sends_the_trino_text_to_the_workgroup_and_database() -> None:
    sql = "SELECT ingest_id, reasons FROM rejected_records CROSS JOIN UNNEST(reasons) AS r(x)"
    athena = RecordingAthena(
        {
            sql: (
                {"ingest_id": ["ing_1"], "reasons": ["[bad_mcc, bad_quoting]"]},
                {"reasons": "array"},
            )
        }
    )
    frame = query(S3, sql, athena=athena.client())
    ((sent, options),) = athena.calls
    assert sent == sql
    assert options == {
        "database": "sluiceway_test",
        "workgroup": "analysts-wg",
        "ctas_approach": False,
    }
    assert frame["reasons"][0] == ["bad_mcc", "bad_quoting"]


def test_athena_query_pinned_to_an_ingest_reads_its_snapshots() -> None:
    pins_sql = (
        "SELECT transactions_snapshot_id, rejected_snapshot_id FROM ingest_ledger "
        "WHERE ingest_id = 'ing_1' AND status = 'completed' ORDER BY finished_at DESC LIMIT 1"
    )
    sql = "WITH big AS (SELECT * FROM transactions WHERE amount > 100) SELECT COUNT(*) FROM big"
    pinned = pin_athena_sql(sql, {"transactions": 11, "rejected_records": 12}, "sluiceway_test")
    athena = RecordingAthena(
        {
            pins_sql: ({"transactions_snapshot_id": [11], "rejected_snapshot_id": [12]}, {}),
            pinned: ({"_col0": [3]}, {"_col0": "bigint"}),
        }
    )
    assert query(S3, sql, "ing_1", athena=athena.client()).iloc[0, 0] == 3
    assert [sent for sent, _ in athena.calls] == [pins_sql, pinned]
    for sent, options in athena.calls:
        assert_athena_sql(sent)
        assert options["workgroup"] == "analysts-wg" and options["database"] == "sluiceway_test"


def _report_answers(ingest_id: str) -> dict[str, tuple[dict[str, list], dict[str, str]]]:
    def sql(name: str, ident: str = ingest_id) -> str:
        return REPORT_SQL[name].render(ident)

    stamp = pd.Timestamp("2026-01-05 10:00:00", tz="UTC")
    return {
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'sluiceway_test'": (
            {
                "table_name": [
                    "transactions",
                    "rejected_records",
                    "ingest_ledger",
                    "processed_transactions",
                    "processing_failures",
                    "job_runs",
                ]
            },
            {"table_name": "varchar"},
        ),
        sql("ledger", ""): (
            {
                "ingest_id": [ingest_id],
                "source_file": ["s3://landing/partner_2026-01-05.csv"],
                "lines_read": [11],
                "accepted": [8],
                "rejected": [2],
                "accepted_lines": [9],
                "rejected_lines": [2],
                "rejected_by_reason": ["{bad_mcc=1, bad_quoting=1}"],
                "transactions_snapshot_id": [101],
                "rejected_snapshot_id": [202],
                "finished_at": [stamp],
                "duration_seconds": [42.0],
            },
            {"rejected_by_reason": "map"},
        ),
        sql("transactions_rows"): ({"records": [8], "lines": [9]}, {}),
        sql("rejected_rows"): ({"records": [2], "lines": [2]}, {}),
        sql("rejects_by_reason"): ({"reason": ["bad_mcc", "bad_quoting"], "records": [1, 1]}, {}),
        sql("outcomes"): ({"result": ["clear", "review"], "records": [5, 2]}, {}),
        sql("failures_by_class"): ({"error_class": ["PermanentError"], "records": [1]}, {}),
        sql("attempts"): ({"attempts": ["1", "2"], "records": [6, 1]}, {}),
        sql("job_runs"): (
            {
                "step": ["ingest", "process"],
                "run_id": ["r1", "r2"],
                "compute": ["glue", "glue"],
                "workers": [10, 10],
                "records": [11, 8],
                "run_ingests": [1, 1],
                "duration_seconds": [42.0, 3.5],
            },
            {},
        ),
        sql("transactions_snapshots"): (
            {"snapshot_id": [100, 101], "committed_at": [stamp, stamp]},
            {},
        ),
        sql("rejected_records_snapshots"): ({"snapshot_id": [202], "committed_at": [stamp]}, {}),
    }


def test_report_on_an_s3_warehouse_reads_through_athena_with_trino_sql() -> None:
    athena = RecordingAthena(_report_answers("ing_1"))
    facts = gather(S3, athena=athena.client())
    assert facts.reconciled
    assert facts.rejects_by_reason == [("bad_mcc", 1), ("bad_quoting", 1)]
    assert facts.processed == 7 and facts.failed == 1
    assert facts.ledger["rejected_by_reason"] == {"bad_mcc": 1, "bad_quoting": 1}
    assert [s["this_ingest"] for s in facts.snapshots] == [False, True, True]
    assert [(run.step, run.seconds) for run in facts.steps] == [("ingest", 42.0), ("process", 3.5)]
    assert facts.cost_usd() == pytest.approx((42.0 + 3.5) * 10 * 0.44 / 3600)
    assert len(athena.calls) == len(REPORT_SQL) + 1  # every report query, and table discovery
    for sent, options in athena.calls:
        assert_athena_sql(sent)
        assert options == {
            "database": "sluiceway_test",
            "workgroup": "analysts-wg",
            "ctas_approach": False,
        }
    assert 'id="reconciliation">reconciled<' in render(facts)


def test_query_module_and_athena_path_work_without_duckdb_sqlglot_or_pyiceberg() -> None:
    program = f"""
import sys
for name in ("duckdb", "sqlglot", "pyiceberg"):
    sys.modules[name] = None
sys.path.insert(0, {str(ROOT / "tests")!r})
import sluiceway.report
from fixtures.analytics import RecordingAthena
from sluiceway.query import query
from sluiceway.settings import load_settings

settings = load_settings(arguments={{"warehouse": "s3://bucket/iceberg"}})
athena = RecordingAthena({{"SELECT 1 AS one": ({{"one": [1]}}, {{}})}})
print(query(settings, "SELECT 1 AS one", athena=athena.client()).iloc[0, 0])
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_analyst_settings_default_to_the_storage_stacks_workgroup_and_database() -> None:
    s3 = {"SLUICEWAY_WAREHOUSE": "s3://bucket/iceberg"}
    stack = analyst_settings(s3)
    assert (stack.athena_workgroup, stack.namespace) == (STACK_WORKGROUP, STACK_DATABASE)
    from_env = analyst_settings({**s3, "SLUICEWAY_ATHENA_WORKGROUP": "team-wg"})
    assert from_env.athena_workgroup == "team-wg" and from_env.namespace == STACK_DATABASE
    given = analyst_settings(s3, namespace="sluiceway_prod", athena_workgroup="sluiceway-prod")
    assert (given.athena_workgroup, given.namespace) == ("sluiceway-prod", "sluiceway_prod")
    local = analyst_settings({}, warehouse="./warehouse")
    assert local.namespace == "sluiceway"


def _resource(template: str, name: str) -> str:
    start = template.index(f"\n  {name}:\n")
    following = re.search(r"\n  \S", template[start + 1 :])
    return template[start : start + 1 + following.start()] if following else template[start:]


def test_stack_names_match_the_storage_template() -> None:
    template = (ROOT / "infra" / "cloudformation" / "storage.yaml").read_text(encoding="utf-8")
    (environment,) = re.findall(r"Default: (\S+)", _resource(template, "EnvironmentName"))

    def name_of(resource: str) -> str:
        (pattern,) = re.findall(r'Name: !Sub "([^"]+)"', _resource(template, resource))
        return pattern.replace("${EnvironmentName}", environment)

    assert name_of("AthenaWorkGroup") == STACK_WORKGROUP
    assert name_of("GlueDatabase") == STACK_DATABASE


MONEY_SQL = (
    "SELECT CAST('12.10' AS DECIMAL(18, 2)) AS amount, "
    "CAST('5200000000000.00' AS DECIMAL(18, 2)) AS big, "
    "CAST('-0.05' AS DECIMAL(18, 2)) AS fee"
)


def _query_output(output: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> str:
    assert main(["query", MONEY_SQL, "--format", output, "--warehouse", str(tmp_path)]) == 0
    return capsys.readouterr().out


def test_query_table_prints_money_with_all_its_digits(tmp_path, capsys) -> None:
    out = _query_output("table", tmp_path, capsys)
    assert out.split() == ["amount", "big", "fee", "12.10", "5200000000000.00", "-0.05"]


def test_query_csv_prints_money_with_all_its_digits(tmp_path, capsys) -> None:
    rows = list(csv.reader(io.StringIO(_query_output("csv", tmp_path, capsys))))
    assert rows == [["amount", "big", "fee"], ["12.10", "5200000000000.00", "-0.05"]]


def test_query_json_prints_money_as_exact_numbers(tmp_path, capsys) -> None:
    out = _query_output("json", tmp_path, capsys)
    assert '"amount": 12.10' in out and '"big": 5200000000000.00' in out
    assert json.loads(out, parse_float=Decimal) == [
        {"amount": Decimal("12.10"), "big": Decimal("5200000000000.00"), "fee": Decimal("-0.05")}
    ]


def test_json_keeps_decimals_inside_maps_and_lists_and_writes_nulls() -> None:
    frame = pd.DataFrame(
        {
            "totals": [{"EUR": Decimal("1.50")}],
            "reasons": [["bad_mcc"]],
            "missing": [None],
            "at": [pd.Timestamp("2026-01-05 10:00", tz="UTC")],
            "ratio": [float("nan")],
        }
    )
    out = format_frame(frame, "json")
    assert '"totals": {"EUR": 1.50}' in out
    assert json.loads(out) == [
        {
            "totals": {"EUR": 1.5},
            "reasons": ["bad_mcc"],
            "missing": None,
            "at": "2026-01-05T10:00:00+00:00",
            "ratio": None,
        }
    ]


def test_athena_pins_skip_a_snapshot_athena_returns_as_null() -> None:
    pins_sql = (
        "SELECT transactions_snapshot_id, rejected_snapshot_id FROM ingest_ledger "
        "WHERE ingest_id = 'ing_2' AND status = 'completed' ORDER BY finished_at DESC LIMIT 1"
    )
    sql = "SELECT COUNT(*) FROM transactions"
    pinned = pin_athena_sql(sql, {"transactions": 5}, "sluiceway_test")
    nullable = {
        "transactions_snapshot_id": pd.array([5], dtype="Int64"),
        "rejected_snapshot_id": pd.array([None], dtype="Int64"),  # awswrangler's bigint null
    }
    athena = RecordingAthena({pins_sql: (nullable, {}), pinned: ({"_col0": [1]}, {})})
    assert query(S3, sql, "ing_2", athena=athena.client()).iloc[0, 0] == 1
    assert athena.calls[-1][0] == pinned
