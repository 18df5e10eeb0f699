"""The driver's pass: header check, identity, and chunk boundaries that never split a record."""

import gzip
import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.contract import HEADER_LINE, MAX_RECORD_BYTES
from sluiceway.errors import LandingFileError
from sluiceway.generate import generate_landing_file
from sluiceway.ingest.landing import read_chunk, scan_landing_file
from sluiceway.ingest.parse import tokenize

pytestmark = pytest.mark.unit

CAP = MAX_RECORD_BYTES


def tokenize_scan(scan) -> pa.Table:
    tables = [tokenize(read_chunk(chunk), chunk.first_line_number) for chunk in scan.chunks]
    return pa.concat_tables(tables).sort_by("line_number")


def test_small_chunks_give_the_same_records_as_one_chunk(tmp_path: Path):
    landing = tmp_path / "landing.csv"
    generate_landing_file(landing, 3000, seed=3, defect_rate=0.05)
    whole = scan_landing_file(str(landing), 1 << 30, str(tmp_path), CAP)
    split = scan_landing_file(str(landing), 4096, str(tmp_path), CAP)
    assert len(whole.chunks) == 1 and len(split.chunks) > 20
    assert tokenize_scan(split).equals(tokenize_scan(whole))
    assert split.chunks[0].first_line_number == 2


def test_chunks_cover_the_file_after_the_header_without_gaps(tmp_path: Path):
    landing = tmp_path / "landing.csv"
    generate_landing_file(landing, 2000, seed=4, defect_rate=0.02)
    scan = scan_landing_file(str(landing), 2048, str(tmp_path), CAP)
    assert scan.chunks[0].start == len(HEADER_LINE) + 1
    assert all(a.end == b.start for a, b in zip(scan.chunks, scan.chunks[1:], strict=False))
    assert scan.chunks[-1].end == landing.stat().st_size
    assert scan.sha256 == hashlib.sha256(landing.read_bytes()).hexdigest()


def test_reordered_header_fails_the_file_with_a_clear_message_when_strict(tmp_path: Path):
    landing = tmp_path / "reordered.csv"
    columns = HEADER_LINE.split(",")
    columns[0], columns[1] = columns[1], columns[0]
    landing.write_text(",".join(columns) + "\n")
    with pytest.raises(
        LandingFileError, match=r"wrong header.*different order.*Nothing was written"
    ):
        scan_landing_file(str(landing), 1024, str(tmp_path), CAP, matching="strict")


def test_unknown_column_in_header_is_named(tmp_path: Path):
    landing = tmp_path / "extra.csv"
    landing.write_text(HEADER_LINE + ",fee\n")
    with pytest.raises(LandingFileError, match=r"unexpected: \['fee'\]"):
        scan_landing_file(str(landing), 1024, str(tmp_path), CAP)


def test_header_with_byte_order_mark_is_accepted(tmp_path: Path):
    landing = tmp_path / "bom.csv"
    landing.write_bytes(b"\xef\xbb\xbf" + HEADER_LINE.encode() + b"\r\nT1,a\r\n")
    scan = scan_landing_file(str(landing), 1024, str(tmp_path), CAP)
    assert scan.chunks[0].start == 3 + len(HEADER_LINE) + 2


def test_gzip_file_is_unpacked_to_staging_and_hashed_as_delivered(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 500, seed=5)
    packed = tmp_path / "landing.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    scan = scan_landing_file(str(packed), 1024, str(tmp_path / "staging"), CAP)
    assert scan.staged
    assert scan.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert Path(scan.data_path).read_bytes() == plain.read_bytes()


def test_zero_byte_file_fails_with_no_header(tmp_path: Path):
    landing = tmp_path / "empty.csv"
    landing.write_bytes(b"")
    with pytest.raises(LandingFileError, match=r"empty\.csv: no header: the file is empty"):
        scan_landing_file(str(landing), 1024, str(tmp_path), CAP)


def lines_of(scan) -> list[int]:
    """Every physical line number the records of a scan cover, in order."""
    table = tokenize_scan(scan)
    spans = zip(
        table.column("line_number").to_pylist(),
        table.column("last_line_number").to_pylist(),
        strict=True,
    )
    return [line for first, last in spans for line in range(first, last + 1)]


def test_truncated_gzip_fails_the_file_and_leaves_no_staged_copy(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 3000, seed=5)
    packed = gzip.compress(plain.read_bytes())
    landing = tmp_path / "landing.csv.gz"
    landing.write_bytes(packed[: len(packed) * 2 // 3])
    staging = tmp_path / "staging"
    with pytest.raises(LandingFileError, match=r"landing\.csv\.gz: truncated gzip"):
        scan_landing_file(str(landing), 4096, str(staging), CAP)
    assert list(staging.iterdir()) == []


def test_gzip_with_trailing_garbage_fails_the_file(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 100, seed=5)
    landing = tmp_path / "landing.csv.gz"
    landing.write_bytes(gzip.compress(plain.read_bytes()) + b"garbage")
    with pytest.raises(LandingFileError, match=r"trailing bytes after the gzip stream"):
        scan_landing_file(str(landing), 4096, str(tmp_path / "staging"), CAP)


def test_every_member_of_a_multi_member_gzip_is_read(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 3000, seed=6)
    data = plain.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    landing = tmp_path / "landing.csv.gz"
    landing.write_bytes(gzip.compress(data[:middle]) + gzip.compress(data[middle:]))
    scan = scan_landing_file(str(landing), 4096, str(tmp_path / "staging"), CAP)
    assert Path(scan.data_path).read_bytes() == data
    assert scan.physical_lines == data.count(b"\n") - 1
    assert lines_of(scan) == list(range(2, scan.physical_lines + 2))


def test_cr_only_line_endings_are_read_as_line_ends(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 2000, seed=8)
    landing = tmp_path / "mac.csv"
    landing.write_bytes(plain.read_bytes().replace(b"\n", b"\r"))
    scan = scan_landing_file(str(landing), 2048, str(tmp_path), CAP)
    reference = scan_landing_file(str(plain), 2048, str(tmp_path), CAP)
    assert scan.cr_line_ends and len(scan.chunks) > 10
    assert scan.physical_lines == reference.physical_lines
    assert tokenize_scan(scan).equals(tokenize_scan(reference))


def test_chunks_split_the_same_records_whatever_damage_the_file_has(tmp_path: Path):
    """Stray quotes, unclosed quotes and bad bytes: tiny chunks and one chunk agree."""
    rows = []
    for n in range(400):
        description = ["plain", '12" pizza', '"open', '"a, b"', '"x\ny"', "caf\xe9", '"q"z'][n % 7]
        rows.append(f"T{n},A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,{description}")
    landing = tmp_path / "hostile.csv"
    landing.write_bytes((HEADER_LINE + "\n" + "\n".join(rows) + "\n").encode("latin-1"))
    whole = scan_landing_file(str(landing), 1 << 30, str(tmp_path), CAP)
    split = scan_landing_file(str(landing), 512, str(tmp_path), CAP)
    assert len(split.chunks) > 20
    assert tokenize_scan(split).equals(tokenize_scan(whole))
    assert lines_of(split) == list(range(2, whole.physical_lines + 2))


def test_planner_resumes_after_a_quote_that_never_closes(tmp_path: Path):
    """An unclosed quote early in the file does not stop chunking (it stays linear)."""
    rows = [
        f"T{n},A,M,1.00,EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE,plain" for n in range(3000)
    ]
    rows[1] = rows[1].replace("plain", '"never closed')
    landing = tmp_path / "unclosed.csv"
    landing.write_text(HEADER_LINE + "\n" + "\n".join(rows) + "\n")
    scan = scan_landing_file(str(landing), 4096, str(tmp_path), CAP)
    assert len(scan.chunks) > 40
    table = tokenize_scan(scan)
    assert table.column("parse_error").to_pylist().count(c.UNTERMINATED_QUOTE) == 1
    assert table.num_rows == 3000


def test_header_only_file_has_no_chunks(tmp_path: Path):
    landing = tmp_path / "header.csv"
    landing.write_text(HEADER_LINE + "\n")
    assert scan_landing_file(str(landing), 1024, str(tmp_path), CAP).chunks == ()


def test_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(LandingFileError, match=r"nope\.csv: file not found"):
        scan_landing_file(str(tmp_path / "nope.csv"), 1024, str(tmp_path), CAP)


def test_gzip_of_nothing_is_an_empty_file_not_an_empty_first_line(tmp_path: Path):
    landing = tmp_path / "empty.csv.gz"
    landing.write_bytes(gzip.compress(b""))
    with pytest.raises(LandingFileError, match=r"no header: the file is empty"):
        scan_landing_file(str(landing), 1024, str(tmp_path / "staging"), CAP)
