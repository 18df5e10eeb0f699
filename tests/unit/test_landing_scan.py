"""The driver's pass: header check, identity, and chunk boundaries that never split a record."""

import gzip
import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from sluiceway.contract import HEADER_LINE
from sluiceway.errors import LandingFileError
from sluiceway.generate import generate_landing_file
from sluiceway.ingest.landing import read_range, scan_landing_file
from sluiceway.ingest.parse import tokenize

pytestmark = pytest.mark.unit


def tokenize_scan(scan) -> pa.Table:
    tables = [
        tokenize(read_range(chunk.path, chunk.start, chunk.end), chunk.first_line_number)
        for chunk in scan.chunks
    ]
    return pa.concat_tables(tables).sort_by("line_number")


def test_small_chunks_give_the_same_records_as_one_chunk(tmp_path: Path):
    landing = tmp_path / "landing.csv"
    generate_landing_file(landing, 3000, seed=3, defect_rate=0.05)
    whole = scan_landing_file(str(landing), 1 << 30, str(tmp_path))
    split = scan_landing_file(str(landing), 4096, str(tmp_path))
    assert len(whole.chunks) == 1 and len(split.chunks) > 20
    assert tokenize_scan(split).equals(tokenize_scan(whole))
    assert split.chunks[0].first_line_number == 2


def test_chunks_cover_the_file_after_the_header_without_gaps(tmp_path: Path):
    landing = tmp_path / "landing.csv"
    generate_landing_file(landing, 2000, seed=4, defect_rate=0.02)
    scan = scan_landing_file(str(landing), 2048, str(tmp_path))
    assert scan.chunks[0].start == len(HEADER_LINE) + 1
    assert all(a.end == b.start for a, b in zip(scan.chunks, scan.chunks[1:], strict=False))
    assert scan.chunks[-1].end == landing.stat().st_size
    assert scan.sha256 == hashlib.sha256(landing.read_bytes()).hexdigest()


def test_reordered_header_fails_the_file_with_a_clear_message(tmp_path: Path):
    landing = tmp_path / "reordered.csv"
    columns = HEADER_LINE.split(",")
    columns[0], columns[1] = columns[1], columns[0]
    landing.write_text(",".join(columns) + "\n")
    with pytest.raises(
        LandingFileError, match=r"wrong header.*different order.*Nothing was written"
    ):
        scan_landing_file(str(landing), 1024, str(tmp_path))


def test_unknown_column_in_header_is_named(tmp_path: Path):
    landing = tmp_path / "extra.csv"
    landing.write_text(HEADER_LINE + ",fee\n")
    with pytest.raises(LandingFileError, match=r"unexpected: \['fee'\]"):
        scan_landing_file(str(landing), 1024, str(tmp_path))


def test_header_with_byte_order_mark_is_accepted(tmp_path: Path):
    landing = tmp_path / "bom.csv"
    landing.write_bytes(b"\xef\xbb\xbf" + HEADER_LINE.encode() + b"\r\nT1,a\r\n")
    scan = scan_landing_file(str(landing), 1024, str(tmp_path))
    assert scan.chunks[0].start == 3 + len(HEADER_LINE) + 2


def test_gzip_file_is_unpacked_to_staging_and_hashed_as_delivered(tmp_path: Path):
    plain = tmp_path / "plain.csv"
    generate_landing_file(plain, 500, seed=5)
    packed = tmp_path / "landing.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    scan = scan_landing_file(str(packed), 1024, str(tmp_path / "staging"))
    assert scan.staged
    assert scan.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert Path(scan.data_path).read_bytes() == plain.read_bytes()


def test_empty_file_has_no_chunks(tmp_path: Path):
    landing = tmp_path / "empty.csv"
    landing.write_bytes(b"")
    scan = scan_landing_file(str(landing), 1024, str(tmp_path))
    assert scan.chunks == () and scan.file_bytes == 0


def test_header_only_file_has_no_chunks(tmp_path: Path):
    landing = tmp_path / "header.csv"
    landing.write_text(HEADER_LINE + "\n")
    assert scan_landing_file(str(landing), 1024, str(tmp_path)).chunks == ()


def test_missing_file_names_the_path(tmp_path: Path):
    with pytest.raises(LandingFileError, match=r"nope\.csv: file not found"):
        scan_landing_file(str(tmp_path / "nope.csv"), 1024, str(tmp_path))
