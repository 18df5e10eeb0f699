"""Header by name on real Spark + Iceberg, read back by DuckDB: a reordered, upper-case,
padded header gives the canonical file's rows; a missing optional column reads as null; a
missing required column and an unknown column under `fail` fail the file (exit 2, nothing
written); `ignore` drops an unknown column and `rescue` keeps it in `transactions._rescued`;
`strict` keeps the exact-header rule."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.cli import main
from sluiceway.errors import ExitCode, LandingFileError
from sluiceway.generate import generate_landing_file
from sluiceway.ingest import ingest_file
from sluiceway.logs import mask_account
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS, TRANSACTIONS, TableDefinition

pytestmark = pytest.mark.integration

NAMES = list(c.COLUMN_NAMES)
ROW = dict(
    zip(
        NAMES,
        "T1,DE89000000037000000001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,x".split(
            ","
        ),
        strict=True,
    )
)
CONTRACT_COLUMNS = ", ".join(NAMES)


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    """A landing file of `rows` under `header`, quoted only where RFC 4180 needs it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    names = [name.strip().lower() for name in header]
    writer.writerows([row[name] for name in names] for row in rows)
    path.write_text(buffer.getvalue(), newline="")
    return path


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def namespace(settings: Settings, suffix: str) -> Settings:
    return dataclasses.replace(settings, namespace=f"{settings.namespace}_{suffix}")


def test_a_reordered_upper_case_padded_header_gives_the_canonical_rows(
    spark, isolated_settings, tmp_path, duckdb_query
):
    generated = tmp_path / "generated.csv"
    generate_landing_file(generated, 600, seed=21)
    rows = rows_of(generated)
    # Rejected lines too: a bad amount, and a duplicate id.
    rows += [
        {**rows[0], "transaction_id": "BAD1", "amount": "1e3"},
        {**rows[1], "description": "again"},
    ]
    canonical = write_csv(tmp_path / "canonical.csv", NAMES, rows)
    shuffled = [*NAMES[5:], *NAMES[:5]][::-1]
    reordered = write_csv(
        tmp_path / "reordered.csv", [f"  {name.upper()} " for name in shuffled], rows
    )
    assert any("\n" in row["description"] for row in rows)  # quoted newlines in both files

    by_name = namespace(isolated_settings, "by_name")
    expected = ingest_file(spark, isolated_settings, str(canonical))
    actual = ingest_file(spark, by_name, str(reordered))

    assert actual.status == expected.status == "completed"
    assert (actual.lines_read, actual.accepted, actual.rejected) == (
        expected.lines_read,
        expected.accepted,
        expected.rejected,
    )
    assert (
        actual.rejected_by_reason
        == expected.rejected_by_reason
        == {
            c.BAD_AMOUNT_FORMAT: 1,
            c.DUPLICATE_IN_FILE: 1,
        }
    )
    query = f"SELECT {CONTRACT_COLUMNS}, line_number, _rescued FROM transactions ORDER BY 12"
    got, want = duckdb_query(by_name, query), duckdb_query(isolated_settings, query)
    assert len(got) == expected.accepted and got == want
    query = "SELECT line_number, reasons, transaction_id FROM rejected_records ORDER BY 1"
    assert duckdb_query(by_name, query) == duckdb_query(isolated_settings, query)


def test_a_missing_optional_column_reads_as_null(spark, isolated_settings, tmp_path, duckdb_query):
    header = [name for name in NAMES if name != "mcc"]
    landing = write_csv(tmp_path / "no-mcc.csv", header, [ROW, {**ROW, "transaction_id": "T2"}])
    result = ingest_file(spark, isolated_settings, str(landing))
    assert (result.status, result.accepted, result.rejected) == ("completed", 2, 0)
    assert duckdb_query(
        isolated_settings, "SELECT transaction_id, mcc, channel FROM transactions ORDER BY 1"
    ) == [("T1", None, "atm"), ("T2", None, "atm")]


def test_a_missing_required_column_fails_the_file_with_exit_2(
    spark, isolated_settings, tmp_path, capsys
):
    header = [name for name in NAMES if name != "currency"]
    landing = write_csv(tmp_path / "no-currency.csv", header, [ROW])
    with pytest.raises(LandingFileError, match=r"wrong header.*required column 'currency'"):
        ingest_file(spark, isolated_settings, str(landing))
    namespaces = [row[0] for row in spark.sql("SHOW NAMESPACES IN lake").collect()]
    assert isolated_settings.namespace not in namespaces
    # The command line: one line naming the file and the column, exit 2 (Spark-free: check).
    assert main(["check", str(landing)]) == ExitCode.BAD_INPUT
    out = capsys.readouterr().out
    assert "no-currency.csv: wrong header: line 1 is" in out
    assert "required column 'currency' is missing" in out


@pytest.mark.parametrize("policy", ["fail", "ignore", "rescue"])
def test_an_unknown_column_follows_the_feed_s_policy(
    spark, isolated_settings, tmp_path, duckdb_query, policy
):
    header = ["loyalty_tier", *NAMES, "Fee"]
    rows = [
        {**ROW, "loyalty_tier": "gold", "fee": "0.50"},
        {**ROW, "transaction_id": "T2", "loyalty_tier": "", "fee": "1", "description": "a\nb"},
        {**ROW, "transaction_id": "T3", "amount": "x", "loyalty_tier": "red", "fee": "2"},
    ]
    landing = write_csv(tmp_path / "extra.csv", header, rows)
    settings = dataclasses.replace(isolated_settings, unknown_columns=policy)
    if policy == "fail":
        with pytest.raises(LandingFileError, match=r"unknown columns 'loyalty_tier', 'Fee'"):
            ingest_file(spark, settings, str(landing))
        return
    result = ingest_file(spark, settings, str(landing))
    assert (result.status, result.accepted, result.rejected) == ("completed", 2, 1)
    rescued = duckdb_query(
        settings, "SELECT transaction_id, description, _rescued FROM transactions ORDER BY 1"
    )
    if policy == "ignore":
        assert rescued == [("T1", "x", None), ("T2", "a\nb", None)]
    else:
        assert rescued == [
            ("T1", "x", {"loyalty_tier": "gold", "Fee": "0.50"}),
            ("T2", "a\nb", {"loyalty_tier": "", "Fee": "1"}),
        ]
    # The rejected line keeps its text as the file held it, unknown columns included, with
    # the sensitive columns masked where this header put them.
    ((raw_line,),) = duckdb_query(settings, "SELECT raw_line FROM rejected_records")
    masked = {"account_id": mask_account(ROW["account_id"]), "counterparty_id": "**"}
    shown = {**ROW, "transaction_id": "T3", "amount": "x", **masked}
    assert raw_line == "red," + ",".join(shown.values()) + ",2"


def test_strict_matching_keeps_the_exact_header_rule(spark, isolated_settings, tmp_path):
    landing = write_csv(tmp_path / "upper.csv", [name.upper() for name in NAMES], [ROW])
    strict = dataclasses.replace(isolated_settings, header_matching="strict")
    with pytest.raises(LandingFileError, match=r"wrong header.*expected 'transaction_id,"):
        ingest_file(spark, strict, str(landing))
    assert ingest_file(spark, isolated_settings, str(landing)).accepted == 1


def test_a_transactions_table_from_before_rescue_gets_the_column(
    spark, isolated_settings, tmp_path, duckdb_query
):
    """A warehouse created before `_rescued` existed: the ingest adds the column, then
    writes into it."""
    old = TableDefinition(
        TRANSACTIONS,
        tuple(column for column in DEFINITIONS[TRANSACTIONS].columns if column[0] != "_rescued"),
        partitioned_by=DEFINITIONS[TRANSACTIONS].partitioned_by,
    )
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{isolated_settings.namespace}")
    spark.sql(old.ddl(isolated_settings.table(TRANSACTIONS)))
    assert "_rescued" not in spark.table(isolated_settings.table(TRANSACTIONS)).columns
    landing = write_csv(tmp_path / "extra.csv", [*NAMES, "fee"], [{**ROW, "fee": "0.50"}])
    settings = dataclasses.replace(isolated_settings, unknown_columns="rescue")
    assert ingest_file(spark, settings, str(landing)).accepted == 1
    assert duckdb_query(settings, "SELECT transaction_id, _rescued FROM transactions") == [
        ("T1", {"fee": "0.50"})
    ]
