"""Generated files with every defect, in every line ending and as a multi-member gzip, reconcile.

The generator writes each hostile shape (stray quotes, unclosed quotes mid-file and at the end,
quoted newlines, Latin-1 bytes, LF / CRLF / CR-only line ends, a .gz of three members) and a
manifest of what a correct ingest finds, in records and in physical lines. The ingest checks
that manifest itself; the test also reads the tables back with DuckDB, not Spark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluiceway.generate import DEFECT_KINDS, Manifest, generate_landing_file
from sluiceway.ingest import ingest_file
from sluiceway.settings import Settings

pytestmark = pytest.mark.integration

RECORDS = 2000
DEFECT_RATE = 0.05


@pytest.mark.parametrize(
    ("line_ending", "gzip_members", "seed"),
    [("lf", 0, 11), ("crlf", 3, 12), ("cr", 0, 13), ("cr", 3, 14)],
    ids=["lf", "crlf-gzip3", "cr", "cr-gzip3"],
)
def test_generated_file_with_every_defect_reconciles_with_its_manifest(
    spark,
    isolated_settings: Settings,
    tmp_path: Path,
    duckdb_query,
    line_ending,
    gzip_members,
    seed,
):
    landing = tmp_path / ("partner.csv.gz" if gzip_members else "partner.csv")
    manifest = generate_landing_file(
        landing,
        RECORDS,
        seed=seed,
        defect_rate=DEFECT_RATE,
        compress=bool(gzip_members),
        line_ending=line_ending,
        gzip_members=max(gzip_members, 1),
    )
    assert_file_is_hostile(landing, manifest, gzip_members)

    result = ingest_file(spark, isolated_settings, str(landing))

    assert (result.status, result.exit_code) == ("completed", 0), result.message
    assert "manifest matched" in result.message
    assert result.lines_read == manifest.lines
    assert (result.accepted, result.rejected) == (manifest.accepted, manifest.rejected)
    assert result.rejected_by_reason == dict(manifest.rejected_by_reason)
    assert_tables_match_manifest(duckdb_query, isolated_settings, manifest)


def assert_file_is_hostile(landing: Path, manifest: Manifest, gzip_members: int) -> None:
    """The test is only worth something if the file really holds every hostile shape."""
    assert set(manifest.rejected_by_reason) == set(DEFECT_KINDS.values())
    assert manifest.lines > manifest.records  # quoted newlines: some records span two lines
    data = landing.read_bytes()
    assert data.count(b"\x1f\x8b\x08") >= gzip_members  # one gzip header per member


def assert_tables_match_manifest(duckdb_query, settings: Settings, manifest: Manifest) -> None:
    by_currency = duckdb_query(
        settings,
        "SELECT currency, COUNT(*), CAST(SUM(amount) * 100 AS BIGINT) FROM transactions "
        "GROUP BY currency ORDER BY currency",
    )
    expected = sorted(
        (currency, count, manifest.accepted_cents_by_currency[currency])
        for currency, count in manifest.accepted_count_by_currency.items()
        if count
    )
    assert by_currency == expected
    lines = duckdb_query(
        settings,
        "SELECT (SELECT SUM(last_line_number - line_number + 1) FROM transactions) "
        "+ (SELECT SUM(last_line_number - line_number + 1) FROM rejected_records)",
    )
    assert lines == [(manifest.lines,)]
    ledger = duckdb_query(settings, "SELECT status, lines_read, accepted FROM ingest_ledger")
    assert ledger == [("completed", manifest.lines, manifest.accepted)]
