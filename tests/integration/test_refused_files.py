"""The file policy on real Spark and Iceberg (issue 21): a broken file is refused as a whole,
exit 2, nothing published, the ledger says why; the tables are read back with DuckDB.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.errors import ExitCode
from sluiceway.ingest import ingest_file
from sluiceway.ingest.file_policy import FilePolicy
from sluiceway.job_arguments import IngestArgs, job_parser
from sluiceway.orchestration.outcome import DATA_ERROR, outcome_of
from sluiceway.pipeline import ingest
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED, REFUSED
from sluiceway.stream.batch import KafkaBatch, ingest_batch

pytestmark = pytest.mark.integration

ROW = "T{number:06d},DE89001,M1,{amount},EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,x"


def row(number: int, amount: str = "1.25") -> str:
    return ROW.format(number=number, amount=amount)


def shifted(number: int) -> str:
    """The export put an empty column after the id: one field too many on every line."""
    return row(number).replace(",", ",,", 1)


def landing(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([c.HEADER_LINE, *rows]) + "\n")
    return path


def tables(duckdb_query, settings: Settings) -> tuple[list[tuple], list[tuple]]:
    """Every published row of both tables, by source file and line."""
    return (
        duckdb_query(settings, "SELECT source_file, line_number FROM transactions ORDER BY 1, 2"),
        duckdb_query(
            settings, "SELECT source_file, line_number FROM rejected_records ORDER BY 1, 2"
        ),
    )


def ledger_row(duckdb_query, settings: Settings, ingest_id: str) -> tuple:
    ((found),) = duckdb_query(
        settings,
        "SELECT status, message, lines_read, rejected_lines, transactions_snapshot_id IS NULL "
        "AND rejected_snapshot_id IS NULL AS unpublished FROM ingest_ledger "
        f"WHERE ingest_id = '{ingest_id}'",
    )
    return found


def test_a_shifted_column_refuses_the_file_whole_and_a_rerun_is_refused_again(
    spark, isolated_settings, tmp_path, duckdb_query
):
    settings = isolated_settings
    good = ingest_file(
        spark, settings, str(landing(tmp_path / "day-1.csv", [row(n) for n in range(10)]))
    )
    assert good.status == COMPLETED
    before = tables(duckdb_query, settings)
    broken = landing(tmp_path / "day-2.csv", [shifted(n) for n in range(100, 1300)])

    refused = ingest_file(spark, settings, str(broken))

    assert (refused.status, refused.exit_code) == (REFUSED, ExitCode.BAD_INPUT)
    assert outcome_of(refused.exit_code)["kind"] == DATA_ERROR  # no retry, no Batch fallback
    assert (refused.lines_read, refused.rejected, refused.accepted) == (1200, 1200, 0)
    assert tables(duckdb_query, settings) == before
    status, message, lines, rejected_lines, unpublished = ledger_row(
        duckdb_query, settings, refused.ingest_id
    )
    assert (status, lines, rejected_lines, unpublished) == (REFUSED, 1200, 1200, True)
    assert message == refused.message
    assert message.startswith(
        f"refused: {broken}: 1,200 of 1,200 lines rejected (100.00%), above the feed's "
        "max_rejected_share of 5% (applied from 1,000 rejected lines); top reasons: "
        "wrong_field_count 1,200 (first lines 2, 3, 4); nothing was published."
    )

    again = ingest_file(spark, settings, str(broken))
    assert (again.status, again.message) == (REFUSED, refused.message)
    assert tables(duckdb_query, settings) == before
    assert duckdb_query(settings, "SELECT COUNT(*) FROM ingest_ledger") == [(2,)]

    # The corrected export: its ids were never published, so none is already_ingested.
    fixed = ingest_file(
        spark,
        settings,
        str(landing(tmp_path / "day-2-fixed.csv", [row(n) for n in range(100, 1300)])),
    )
    assert (fixed.status, fixed.accepted, fixed.rejected) == (COMPLETED, 1200, 0)


def test_the_operator_raises_the_threshold_and_the_rerun_publishes(
    spark, isolated_settings, tmp_path, duckdb_query
):
    settings = isolated_settings
    rows = [row(n) for n in range(2000)]
    rows[:1500] = [shifted(n) for n in range(1500)]
    broken = landing(tmp_path / "known-bad-day.csv", rows)

    def request(*options: str) -> IngestArgs:
        """The job's arguments, run against this test's namespace."""
        parsed = job_parser("ingest").parse_args(["--source", str(broken), *options])
        return dataclasses.replace(IngestArgs.from_namespace(parsed, {}), settings=settings)

    assert ingest(spark, request()).status == REFUSED
    published = ingest(spark, request("--max-rejected-share", "0.8"))

    assert (published.status, published.exit_code) == (COMPLETED, ExitCode.OK)
    assert duckdb_query(settings, "SELECT COUNT(*) FROM rejected_records") == [(1500,)]
    assert duckdb_query(settings, "SELECT COUNT(*) FROM transactions") == [(500,)]
    assert ledger_row(duckdb_query, settings, published.ingest_id)[0] == COMPLETED


@pytest.mark.parametrize(("bad", "status"), [(10, COMPLETED), (11, REFUSED)])
def test_a_file_just_under_the_threshold_publishes_and_just_over_is_refused(
    spark, isolated_settings, tmp_path, duckdb_query, bad, status
):
    rows = [row(n, "1.2.3" if n < bad else "1.25") for n in range(200)]
    policy = FilePolicy(max_rejected_share=0.05, min_rejected_lines=10)
    result = ingest_file(
        spark, isolated_settings, str(landing(tmp_path / "edge.csv", rows)), policy=policy
    )
    assert result.status == status, result.message
    published = 0 if status == REFUSED else bad
    rejected = duckdb_query(isolated_settings, "SELECT COUNT(*) FROM rejected_records")
    assert rejected == [(published,)]


def test_a_fail_file_reason_refuses_the_file_naming_the_line_the_rule_and_the_file(
    spark, isolated_settings, tmp_path, duckdb_query
):
    rows = [row(n) for n in range(50)]
    rows[7] = row(7, "12.5O")
    rows[30] = row(30, "1.0.0")
    source = landing(tmp_path / "comma-day.csv", rows)
    policy = FilePolicy(fail_file_reasons=frozenset({c.BAD_AMOUNT_FORMAT}))

    result = ingest_file(spark, isolated_settings, str(source), policy=policy)

    assert (result.status, result.exit_code) == (REFUSED, ExitCode.BAD_INPUT)
    assert result.message.startswith(
        f"refused: {source}: line 9 was rejected for bad_amount_format, a rule that fails the "
        "whole file (fail_file); bad_amount_format: 2 records (first lines 9, 32); "
        "nothing was published."
    )
    assert tables(duckdb_query, isolated_settings) == ([], [])
    assert ledger_row(duckdb_query, isolated_settings, result.ingest_id)[:2] == (
        REFUSED,
        result.message,
    )


def test_a_stream_batch_of_nothing_but_rejects_is_published(spark, isolated_settings, duckdb_query):
    """Streams refuse no batch: Spark would replay a refused batch forever (ADR 0013)."""
    values = [shifted(n).encode() for n in range(1200)]
    table = pa.table(
        {
            "partition": pa.array([0] * len(values), pa.int32()),
            "offset": pa.array(range(len(values)), pa.int64()),
            "value": pa.array(values, pa.binary()),
        }
    )
    result = ingest_batch(spark, isolated_settings, KafkaBatch.of("broken-producer", table))
    assert (result.status, result.rejected) == (COMPLETED, 1200)
    assert duckdb_query(isolated_settings, "SELECT COUNT(*) FROM rejected_records") == [(1200,)]
