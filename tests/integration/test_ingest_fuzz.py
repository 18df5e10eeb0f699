"""Fuzz through the real job: a mutated landing file never crashes the ingest or loses a line.

Each case mutates a generated file (every defect) with a seeded generator: hostile bytes,
cut and duplicated ranges, and values no rule expects (years 0, 9999 and 12026, 40-digit amounts,
NUL, 5,000-character fields, offsets like +99:99), some packed as gzip. The job must either
fail the whole file (LandingFileError) having written nothing, or finish with exit code 0
(completed) or 3 (reconciliation failed against the manifest), every physical line after the
header covered by exactly one accepted or rejected record, read back with DuckDB.
The unit tier (tests/unit/test_landing_fuzz.py) runs hundreds of cases through the scan and
the tokenizer; this tier adds validation and the table writes, so it is a handful of files.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import random
from pathlib import Path

import pytest

from sluiceway.contract import (
    AMOUNT_MAX,
    AMOUNT_MIN,
    COLUMN_NAMES,
    CURRENCIES,
    EVENT_TIME_MAX,
    EVENT_TIME_MIN,
)
from sluiceway.errors import LandingFileError
from sluiceway.generate import generate_landing_file, manifest_path
from sluiceway.ingest import ingest_file
from sluiceway.ingest.landing import GZIP_MAGIC
from sluiceway.settings import Settings

pytestmark = pytest.mark.integration

HOSTILE_BYTES = b'"\r\n,\xff\xc3\x00'
# Values that reach the rules with the file's structure intact (each written with RFC 4180
# quoting): every one must become a reason code or an accepted value, never an exception.
ANY_FIELD = ("", " ", "\x00", "x" * 5000, "é" * 300, "\u2028", "NULL", "\\N",
             'a "quoted" value, with a comma\nand a newline')  # fmt: skip
BY_FIELD = {
    "amount": ("-0.00", "0000000000000000.00", "9" * 40 + ".99", "1e400", "NaN", "-Infinity",
               "١٢.٠٠", "1000000000.00", "1000000000.01", "-1000000000.00", " 1.00"),
    "event_time": ("0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                   "1900-01-01T00:00:00Z", "1900-01-01T00:00:00+14:00", "2999-12-31T23:59:59Z",
                   "2999-12-31T23:59:59-14:00", "2026-11-25T24:00:00Z", "2026-11-25T10:00:60Z",
                   "2026-11-25T10:00:00+99:99", "2026-11-25 10:00:00.999999Z",
                   "+12026-11-25T10:00:00Z"),
    "currency": ("EUR\x00", "€", "eur", "EU"),
    "mcc": ("٥٤١١", "0000", "54111"),
}  # fmt: skip


def mutate_bytes(rng: random.Random, body: bytes, count: int) -> bytes:
    """Hostile bytes inserted or replacing, ranges deleted or duplicated."""
    for _ in range(count):
        at = rng.randrange(len(body) + 1)
        kind = rng.choice(["insert", "replace", "delete", "duplicate"])
        if kind == "insert":
            body = body[:at] + bytes([rng.choice(HOSTILE_BYTES)]) + body[at:]
        elif kind == "replace":
            body = body[:at] + bytes([rng.choice(HOSTILE_BYTES)]) + body[at + 1 :]
        elif kind == "delete":
            body = body[:at] + body[at + rng.randint(1, 40) :]
        else:
            source = rng.randrange(len(body) + 1)
            body = body[:at] + body[source : source + rng.randint(1, 400)] + body[at:]
    return body


def mutate_values(rng: random.Random, body: bytes, ending: bytes, count: int) -> bytes:
    """One field of `count` plain records replaced by a hostile value, quoted as RFC 4180 says.

    Mostly a value aimed at the field's own rule, sometimes one that fits no field.
    """
    lines = body.split(ending)
    plain = [i for i, line in enumerate(lines) if b'"' not in line and line.count(b",") == 10]
    for index in rng.sample(plain, min(count, len(plain))):
        fields = lines[index].decode("utf-8").split(",")
        name = rng.choice([*BY_FIELD, rng.choice(COLUMN_NAMES)])
        values = BY_FIELD.get(name, ()) if rng.random() < 0.8 else ()
        fields[COLUMN_NAMES.index(name)] = rng.choice(values or ANY_FIELD)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(fields)
        lines[index] = out.getvalue()[:-1].replace("\n", ending.decode()).encode("utf-8")
    return ending.join(lines)


def gzip_members(rng: random.Random, data: bytes, members: int, truncate: bool) -> bytes:
    """`members` gzip members split anywhere; `truncate` cuts the last one short."""
    cuts = sorted(rng.randrange(len(data)) for _ in range(members - 1))
    packed = [
        gzip.compress(data[a:b], mtime=0) for a, b in itertools.pairwise([0, *cuts, len(data)])
    ]
    if truncate:
        packed[-1] = packed[-1][: rng.randrange(10, len(packed[-1]) - 1)]
    return b"".join(packed)


def physical_lines_after_header(data: bytes) -> int:
    """Line ends after the first line, CR-only files read as such; counted without the scan."""
    if data.startswith(GZIP_MAGIC):
        data = gzip.decompress(data)
    first_lf, first_cr = data.find(b"\n"), data.find(b"\r")
    if first_cr != -1 and (first_lf == -1 or first_cr < first_lf - 1):
        data = data.replace(b"\r", b"\n")
    body = data[data.find(b"\n") + 1 :]
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


# (line ending, seed, byte mutations, value mutations, gzip members, keep the manifest,
#  truncate the gzip). Kept: the manifest no longer matches, so that case fails with exit 3.
CASES = {
    "lf-bytes": ("lf", 1, 40, 0, 0, False, False),
    "crlf-values": ("crlf", 2, 0, 60, 0, False, False),
    "cr-bytes-and-values-manifest-kept": ("cr", 3, 15, 30, 0, True, False),
    "lf-gzip-2-members": ("lf", 4, 25, 25, 2, False, False),
    "crlf-gzip-truncated": ("crlf", 5, 10, 10, 3, False, True),
}


# Accepted rows that break the contract: a hostile value that slipped through every rule.
OUTSIDE_THE_CONTRACT = f"""
    SELECT COUNT(*) FROM transactions
    WHERE event_time NOT BETWEEN TIMESTAMPTZ '{EVENT_TIME_MIN}' AND TIMESTAMPTZ '{EVENT_TIME_MAX}'
       OR amount NOT BETWEEN {AMOUNT_MIN} AND {AMOUNT_MAX}
       OR currency NOT IN ({", ".join(f"'{code}'" for code in sorted(CURRENCIES))})
       OR NOT regexp_full_match(mcc, '[0-9]{{4}}')
       OR trim(transaction_id) = '' OR trim(account_id) = ''
"""


@pytest.mark.parametrize("case", list(CASES))
def test_mutated_file_ends_completed_failed_or_refused_whole_never_with_lines_lost(
    spark, isolated_settings: Settings, tmp_path: Path, duckdb_query, case: str
):
    ending, seed, byte_mutations, value_mutations, members, keep_manifest, truncate = CASES[case]
    rng = random.Random(seed)
    landing = tmp_path / "mutated.csv"
    generate_landing_file(landing, 300, seed=seed, defect_rate=0.1, line_ending=ending)
    header, separator, body = landing.read_bytes().partition(ending.encode())
    body = mutate_values(rng, body, ending.encode(), value_mutations)
    body = mutate_bytes(rng, body, byte_mutations)
    data = header + separator + body
    if members:
        data = gzip_members(rng, data, members, truncate)
        manifest_path(landing).rename(manifest_path(f"{landing}.gz"))
        landing = landing.with_name("mutated.csv.gz")
    landing.write_bytes(data)
    if not keep_manifest:
        manifest_path(landing).unlink()

    if truncate:
        with pytest.raises(LandingFileError, match="truncated gzip"):
            ingest_file(spark, isolated_settings, str(landing))
        assert_nothing_written(spark, isolated_settings)
        return
    result = ingest_file(spark, isolated_settings, str(landing))
    lines = physical_lines_after_header(data)
    assert result.lines_read == lines
    assert (result.status, result.exit_code) in {("completed", 0), ("failed", 3)}
    assert (result.status == "failed") == keep_manifest, result.message
    assert "lines after the header" not in result.message  # never a line-balance failure
    ((ledger_lines, accepted_lines, rejected_lines),) = duckdb_query(
        isolated_settings, "SELECT lines_read, accepted_lines, rejected_lines FROM ingest_ledger"
    )
    assert ledger_lines == accepted_lines + rejected_lines == lines
    in_tables = duckdb_query(
        isolated_settings,
        "SELECT (SELECT COUNT(*) FROM transactions), "
        "(SELECT COALESCE(SUM(last_line_number - line_number + 1), 0) FROM transactions), "
        "(SELECT COUNT(*) FROM rejected_records), "
        "(SELECT COALESCE(SUM(last_line_number - line_number + 1), 0) FROM rejected_records)",
    )
    if result.status == "completed":
        assert in_tables == [(result.accepted, accepted_lines, result.rejected, rejected_lines)]
        assert duckdb_query(isolated_settings, OUTSIDE_THE_CONTRACT) == [(0,)]
    else:  # a failed ingest leaves no rows behind
        assert in_tables == [(0, 0, 0, 0)]


def assert_nothing_written(spark, settings: Settings) -> None:
    """A whole-file failure leaves no namespace, or at least no rows and no ledger entry."""
    namespaces = [r[0] for r in spark.sql("SHOW NAMESPACES IN lake").collect()]
    if settings.namespace in namespaces:
        for table in ("transactions", "rejected_records", "ingest_ledger"):
            if spark.catalog.tableExists(settings.table(table)):
                assert spark.table(settings.table(table)).count() == 0, table
