"""The sample generator: deterministic, every defect kind, a manifest that adds up.

The manifest is checked against an independent reading of the bytes: a small reference reader
below follows the ingest's rules (physical lines end in LF, a trailing CR is stripped, a
CR-only file is read as LF; a quote opens a field only at its start; a record whose quote does
not close cleanly costs its first line only) and the contract's value rules.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.cli import main
from sluiceway.errors import ConfigurationError
from sluiceway.generate import (
    DEFECT_KINDS,
    DESCRIPTIONS,
    QUOTED_DESCRIPTIONS,
    UNTERMINATED_AT_END,
    _csv_line,
    _defect_line,
    generate_landing_file,
    manifest_path,
)

pytestmark = pytest.mark.unit

ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
# (line ending, gzip members; 0 = plain)
SHAPES = [("lf", 0), ("crlf", 0), ("cr", 0), ("lf", 3), ("crlf", 1), ("cr", 3)]
# The end of a line whose description opens a quote and never closes it.
UNCLOSED = rb',"(' + b"|".join(d.encode() for d in (*DESCRIPTIONS, "open")) + rb")"
ROW = ["TX1", "DE89", "M1", "1.00", "EUR", "2026-11-25T00:00:00Z", "settled", "atm", "6011", "DE"]


# ---------------------------------------------------------------- the reference reader
def gzip_members(packed: bytes) -> list[bytes]:
    """Each gzip member's content, read member by member with zlib."""
    members = []
    while packed:
        inflater = zlib.decompressobj(wbits=31)
        members.append(inflater.decompress(packed))
        assert inflater.eof, "a gzip member is truncated"
        packed = inflater.unused_data
    return members


def physical_lines(data: bytes) -> list[bytes]:
    """The file's physical lines (header first), as the ingest's tokenizer splits them."""
    first_end = re.search(rb"\r\n|\r|\n", data)
    if first_end and first_end.group() == b"\r":
        data = data.replace(b"\r", b"\n")  # an old-Mac export: CR ends every line
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file ends with a line end
    return [line.removesuffix(b"\r") for line in lines]


def parse_record(lines: list[bytes], first: int) -> tuple[list[bytes] | str, int]:
    """The fields of the record starting at line `first` (or a quoting reason), next line."""
    fields: list[bytes] = []
    at, line, position = first, lines[first], 0
    while True:
        field = bytearray()
        if line[position : position + 1] == b'"':
            position += 1
            while True:
                quote = line.find(b'"', position)
                if quote < 0:  # the quoted field goes on on the next physical line
                    field += line[position:] + b"\n"
                    at += 1
                    if at == len(lines):
                        return c.UNTERMINATED_QUOTE, first + 1
                    line, position = lines[at], 0
                    continue
                field += line[position:quote]
                if line[quote + 1 : quote + 2] == b'"':
                    field += b'"'
                    position = quote + 2
                    continue
                position = quote + 1
                break
            if position < len(line) and line[position : position + 1] != b",":
                return (c.BAD_QUOTING if at == first else c.UNTERMINATED_QUOTE), first + 1
        else:
            comma = line.find(b",", position)
            end = len(line) if comma < 0 else comma
            if b'"' in line[position:end]:
                return (c.BAD_QUOTING if at == first else c.UNTERMINATED_QUOTE), first + 1
            field += line[position:end]
            position = end
        fields.append(bytes(field))
        if position == len(line):
            if at > first and len(fields) != len(c.COLUMNS):
                return c.UNTERMINATED_QUOTE, first + 1
            return fields, at + 1
        position += 1


def value_reasons(fields: list[bytes], seen_ids: set[str]) -> list[str]:
    """Every contract rule the record breaks."""
    if len(fields) != len(c.COLUMNS):
        return [c.WRONG_FIELD_COUNT]
    try:
        row = dict(zip(c.COLUMN_NAMES, (f.decode(c.ENCODING) for f in fields), strict=True))
    except UnicodeDecodeError:
        return [c.INVALID_ENCODING]
    reasons = []
    if any(column.required and not row[column.name] for column in c.COLUMNS):
        reasons.append(c.MISSING_REQUIRED)
    if not re.match(c.AMOUNT_PATTERN, row["amount"]):
        reasons.append(c.BAD_AMOUNT_FORMAT)
    elif not c.AMOUNT_MIN <= Decimal(row["amount"]) <= c.AMOUNT_MAX:
        reasons.append(c.AMOUNT_OUT_OF_RANGE)
    if row["currency"] not in c.CURRENCIES:
        reasons.append(c.UNKNOWN_CURRENCY)
    if row["country"] not in c.COUNTRIES:
        reasons.append(c.UNKNOWN_COUNTRY)
    try:
        assert re.match(c.EVENT_TIME_PATTERN, row["event_time"])
        datetime.fromisoformat(row["event_time"])
    except (AssertionError, ValueError):
        reasons.append(c.BAD_EVENT_TIME)
    if row["status"] not in c.STATUSES:
        reasons.append(c.UNKNOWN_STATUS)
    if row["channel"] not in c.CHANNELS:
        reasons.append(c.UNKNOWN_CHANNEL)
    if row["mcc"] and not re.match(c.MCC_PATTERN, row["mcc"]):
        reasons.append(c.BAD_MCC)
    if row["transaction_id"] in seen_ids:
        reasons.append(c.DUPLICATE_IN_FILE)
    seen_ids.add(row["transaction_id"])
    return reasons


def read_like_the_ingest(data: bytes) -> dict[str, object]:
    """What a correct ingest finds in the (uncompressed) bytes, in the manifest's terms."""
    lines = physical_lines(data)
    assert lines[0].decode() == c.HEADER_LINE
    rejected: Counter[str] = Counter()
    cents: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    seen_ids: set[str] = set()
    records, at = 0, 1
    while at < len(lines):
        outcome, at = parse_record(lines, at)
        records += 1
        reasons = [outcome] if isinstance(outcome, str) else value_reasons(outcome, seen_ids)
        assert len(reasons) <= 1, f"record {records} breaks several rules: {reasons}"
        if reasons:
            rejected[reasons[0]] += 1
        else:
            currency = outcome[4].decode()
            cents[currency] += int(Decimal(outcome[3].decode()) * 100)
            counts[currency] += 1
    return {
        "records": records,
        "lines": len(lines) - 1,
        "accepted": sum(counts.values()),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(sorted(rejected.items())),
        "accepted_amount_by_currency": {
            currency: str(Decimal(total).scaleb(-2)) for currency, total in sorted(cents.items())
        },
        "accepted_count_by_currency": dict(sorted(counts.items())),
    }


def landing_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return b"".join(gzip_members(raw)) if path.suffix == ".gz" else raw


def generate_shape(tmp_path: Path, ending: str, members: int, records: int, **options) -> Path:
    name = f"{ending}-{members}.csv" + (".gz" if members else "")
    landing = tmp_path / name
    generate_landing_file(
        landing,
        records,
        line_ending=ending,
        compress=members > 0,
        gzip_members=max(members, 1),
        **options,
    )
    return landing


# ---------------------------------------------------------------- the manifest is exact
@pytest.mark.parametrize(("ending", "members"), SHAPES)
def test_manifest_matches_an_independent_reading_of_the_bytes(
    tmp_path: Path, ending: str, members: int
):
    landing = generate_shape(tmp_path, ending, members, 4000, seed=5, defect_rate=0.06)
    saved = json.loads(manifest_path(landing).read_text())
    found = read_like_the_ingest(landing_bytes(landing))
    assert {key: saved[key] for key in found} == found
    assert saved["records"] == saved["accepted"] + saved["rejected"] == 4000
    assert saved["lines"] > saved["records"]  # some quoted descriptions hold a newline
    assert saved["sha256"] == hashlib.sha256(landing.read_bytes()).hexdigest()
    assert (saved["line_ending"], saved["gzip_members"]) == (ending, members)


@pytest.mark.parametrize(("ending", "members"), SHAPES)
def test_lines_count_every_line_end_after_the_header(tmp_path: Path, ending: str, members: int):
    landing = generate_shape(tmp_path, ending, members, 3000, seed=8, defect_rate=0.04)
    data = landing_bytes(landing)
    # The last line (an unclosed quote left open at the end of the file) has no line end.
    assert data.endswith(UNTERMINATED_AT_END)
    # Every line end but the header's ends a line, and one more line has none.
    line_ends = data.count(ENDINGS[ending])
    assert json.loads(manifest_path(landing).read_text())["lines"] == line_ends


def test_file_without_defects_ends_with_a_line_end_and_counts_it(tmp_path: Path):
    landing = generate_shape(tmp_path, "crlf", 0, 500, seed=9)
    data = landing.read_bytes()
    saved = json.loads(manifest_path(landing).read_text())
    assert data.endswith(b"\r\n") and saved["lines"] == data.count(b"\r\n") - 1
    assert saved["rejected"] == 0 and saved["accepted"] == saved["records"] == 500


def test_defects_cover_every_reason_the_generator_knows(tmp_path: Path):
    manifest = generate_landing_file(tmp_path / "d.csv", 20_000, seed=1, defect_rate=0.02)
    assert set(manifest.rejected_by_reason) == set(DEFECT_KINDS.values())
    not_generated = manifest.to_json()["not_generated"]
    assert set(c.REASONS) - set(manifest.rejected_by_reason) == set(not_generated)
    assert c.ALREADY_INGESTED in not_generated  # needs an earlier file


def test_manifest_counts_add_up_and_sit_beside_the_file(tmp_path: Path):
    landing = tmp_path / "m.csv"
    generate_landing_file(landing, 5000, seed=2, defect_rate=0.03)
    saved = json.loads(manifest_path(landing).read_text())
    assert saved["records"] == saved["accepted"] + saved["rejected"] == 5000
    assert sum(saved["accepted_count_by_currency"].values()) == saved["accepted"]
    assert saved["sha256"] == hashlib.sha256(landing.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the new defects
def test_stray_quotes_and_unclosed_quotes_sit_in_the_middle_of_the_file(tmp_path: Path):
    landing = tmp_path / "q.csv"
    generate_landing_file(landing, 3000, seed=3, defect_rate=0.05)
    lines = physical_lines(landing.read_bytes())
    stray = [n for n, line in enumerate(lines) if re.search(rb'[^,]" ', line)]
    unclosed = [n for n, line in enumerate(lines) if re.search(UNCLOSED + b"$", line)]
    assert len(stray) > 5 and len(unclosed) > 5
    assert max(unclosed[:-1]) < len(lines) - 1 == unclosed[-1]
    for n in stray:
        assert parse_record(lines, n) == (c.BAD_QUOTING, n + 1)
    for n in unclosed:  # costs its own line; the next line is a record of its own
        assert parse_record(lines, n) == (c.UNTERMINATED_QUOTE, n + 1)


def every_line_the_generator_writes() -> dict[str, bytes]:
    values = [*ROW, DESCRIPTIONS[0]]
    lines = {f"valid: {d!r}": _csv_line([*ROW, d]) for d in (*DESCRIPTIONS, *QUOTED_DESCRIPTIONS)}
    for kind in DEFECT_KINDS:
        for variant in range(6):
            lines[f"{kind} #{variant}"] = _defect_line(kind, list(values), variant)
    lines["unclosed at the end"] = UNTERMINATED_AT_END
    return lines


@pytest.mark.parametrize("name", sorted(every_line_the_generator_writes()))
def test_first_quote_of_every_kind_of_line_cannot_close_an_open_quote(name: str):
    line = every_line_the_generator_writes()[name]
    quote = line.find(b'"')
    # Inside an open quoted field a quote closes it only before `,` or a line end, and `""`
    # is an escaped quote: any other next byte leaves the swallowing record broken.
    assert quote < 0 or line[quote + 1 : quote + 2] not in (b"", b",", b'"', b"\r", b"\n"), line


@pytest.mark.parametrize("ending", ENDINGS)
def test_in_generated_files_the_quote_after_an_unclosed_one_never_closes_it(
    tmp_path: Path, ending: str
):
    landing = generate_shape(tmp_path, ending, 0, 5000, seed=4, defect_rate=0.2)
    data = landing.read_bytes()
    opened = [m.end() for m in re.finditer(UNCLOSED + rb"(\r\n|\r|\n|$)", data)]
    assert len(opened) > 50
    for start in opened:
        after = data.find(b'"', start)
        assert after < 0 or data[after + 1 : after + 2] not in (b"", b",", b'"', b"\r", b"\n")


# ---------------------------------------------------------------- line endings and gzip
def test_cr_only_file_has_no_line_feed(tmp_path: Path):
    landing = generate_shape(tmp_path, "cr", 0, 2000, seed=6, defect_rate=0.05)
    data = landing.read_bytes()
    assert b"\n" not in data and data.startswith(c.HEADER_LINE.encode() + b"\r")
    assert data.count(b"\r") == json.loads(manifest_path(landing).read_text())["lines"]


def test_crlf_file_has_no_bare_cr_or_lf(tmp_path: Path):
    landing = generate_shape(tmp_path, "crlf", 0, 2000, seed=6, defect_rate=0.05)
    data = landing.read_bytes()
    assert data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n") > 2000


@pytest.mark.parametrize(("records", "members"), [(3000, 3), (3000, 1), (2, 5), (0, 3)])
def test_gzip_has_the_members_asked_for_and_the_plain_bytes(
    tmp_path: Path, records: int, members: int
):
    generate_landing_file(tmp_path / "p.csv", records, seed=4, defect_rate=0.05)
    packed = tmp_path / "p.csv.gz"
    manifest = generate_landing_file(
        packed, records, seed=4, defect_rate=0.05, compress=True, gzip_members=members
    )
    parts = gzip_members(packed.read_bytes())
    assert len(parts) == members == manifest.gzip_members
    assert b"".join(parts) == (tmp_path / "p.csv").read_bytes()
    assert gzip.decompress(packed.read_bytes()) == b"".join(parts)
    if records >= members:  # each member holds records, split at line ends
        assert all(part.endswith((b"\n", b'"open')) and len(part) > 100 for part in parts)


def test_records_are_in_the_expected_size_range(tmp_path: Path):
    landing = tmp_path / "s.csv"
    generate_landing_file(landing, 10_000, seed=3)
    assert 110 <= landing.stat().st_size / 10_000 <= 150


# ---------------------------------------------------------------- determinism and options
@pytest.mark.parametrize(("ending", "members"), [("lf", 0), ("cr", 3)])
def test_same_seed_gives_the_same_bytes(tmp_path: Path, ending: str, members: int):
    first = generate_shape(tmp_path / "a", ending, members, 2000, seed=11, defect_rate=0.01)
    second = generate_shape(tmp_path / "b", ending, members, 2000, seed=11, defect_rate=0.01)
    assert first.read_bytes() == second.read_bytes()
    assert manifest_path(first).read_text() == manifest_path(second).read_text()
    other = generate_shape(tmp_path / "c", ending, members, 2000, seed=12, defect_rate=0.01)
    assert other.read_bytes() != first.read_bytes()


def test_line_endings_change_only_the_line_ends(tmp_path: Path):
    lf = generate_shape(tmp_path, "lf", 0, 2000, seed=13, defect_rate=0.05).read_bytes()
    cr = generate_shape(tmp_path, "cr", 0, 2000, seed=13, defect_rate=0.05).read_bytes()
    crlf = generate_shape(tmp_path, "crlf", 0, 2000, seed=13, defect_rate=0.05).read_bytes()
    assert cr.replace(b"\r", b"\n") == lf == crlf.replace(b"\r\n", b"\n")


def test_unknown_line_ending_and_members_without_gzip_are_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="line ending 'lfcr' is not one of lf, crlf"):
        generate_landing_file(tmp_path / "x.csv", 10, line_ending="lfcr")
    with pytest.raises(ConfigurationError, match="more than 1 only with --gzip"):
        generate_landing_file(tmp_path / "x.csv", 10, gzip_members=2)
    with pytest.raises(ConfigurationError, match="gzip members 0"):
        generate_landing_file(tmp_path / "x.csv.gz", 10, compress=True, gzip_members=0)


def test_cli_writes_a_cr_only_multi_member_gzip(tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "cli.csv.gz"
    argv = ["generate", "--records", "300", "--out", str(out), "--defect-rate", "0.1", "--gzip"]
    assert main([*argv, "--line-ending", "cr", "--gzip-members", "3"]) == 0
    saved = json.loads(manifest_path(out).read_text())
    assert (saved["line_ending"], saved["gzip_members"], saved["records"]) == ("cr", 3, 300)
    assert len(gzip_members(out.read_bytes())) == 3
    assert "300 records" in capsys.readouterr().out
    plain = ["generate", "--records", "3", "--out", str(tmp_path / "y.csv")]
    assert main([*plain, "--gzip-members", "2"]) == 2
    assert "only with --gzip" in capsys.readouterr().err


def test_reference_reader_costs_a_broken_quote_one_line():
    row = ",".join(ROW).encode()
    lines = physical_lines(
        c.HEADER_LINE.encode() + b"\r\n"
        + row + b',"open\r\n'
        + row + b",plain\r\n"
        + row + b',"a""b"x\r\n'
        + row + b',12" pizza\r\n'
        + row + b',"two\r\nlines, ""quoted"""\r\n'
    )  # fmt: skip
    assert len(lines) == 7
    assert parse_record(lines, 1) == (c.UNTERMINATED_QUOTE, 2)
    assert parse_record(lines, 2) == ([*(v.encode() for v in ROW), b"plain"], 3)
    assert parse_record(lines, 3) == (c.BAD_QUOTING, 4)
    assert parse_record(lines, 4) == (c.BAD_QUOTING, 5)
    assert parse_record(lines, 5) == ([*(v.encode() for v in ROW), b'two\nlines, "quoted"'], 7)
