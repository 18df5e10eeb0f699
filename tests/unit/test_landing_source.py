"""Landing bytes from a local file: whole-file blocks, range reads, and the errors people see."""

from pathlib import Path

import pytest

from sluiceway.errors import LandingFileError
from sluiceway.ingest.source import open_blocks, read_range, resolve_version, s3_object

pytestmark = pytest.mark.unit

CONTENT = bytes(range(256)) * 40


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    path = tmp_path / "landing.csv"
    path.write_bytes(CONTENT)
    return path


def test_blocks_of_a_local_file_are_the_whole_file_in_order(local_file: Path) -> None:
    blocks = list(open_blocks(str(local_file), None, 4096))
    assert [len(block) for block in blocks] == [4096, 4096, 2048]
    assert b"".join(blocks) == CONTENT


def test_range_of_a_local_file_is_exactly_those_bytes(local_file: Path) -> None:
    assert read_range(str(local_file), None, 300, 5000) == CONTENT[300:5000]
    assert read_range(f"file://{local_file}", None, 0, 10) == CONTENT[:10]
    assert read_range(str(local_file), None, 70, 70) == b""


def test_missing_local_file_fails_before_any_block(tmp_path: Path) -> None:
    with pytest.raises(LandingFileError, match="file not found") as raised:
        open_blocks(str(tmp_path / "absent.csv"), None, 1024)
    assert raised.value.rule == "file not found"
    assert "absent.csv" in str(raised.value)


def test_file_shorter_than_the_planned_range_is_a_changed_file(local_file: Path) -> None:
    with pytest.raises(LandingFileError) as raised:
        read_range(str(local_file), None, len(CONTENT) - 10, len(CONTENT) + 90)
    assert raised.value.rule == "file changed during the ingest"
    assert "10 bytes found" in str(raised.value)


def test_version_id_for_a_local_file_is_refused(local_file: Path) -> None:
    with pytest.raises(LandingFileError, match="only s3:// objects have versions"):
        read_range(str(local_file), "3HL4kqtJlcpXroDTDmJ", 0, 10)
    with pytest.raises(LandingFileError, match="Leave out --source-version"):
        open_blocks(str(local_file), "3HL4kqtJlcpXroDTDmJ", 1024)


def test_local_files_have_no_version_and_s3_uris_split_into_bucket_and_key(
    local_file: Path,
) -> None:
    assert resolve_version(str(local_file)) is None
    target = s3_object("s3://landing/incoming/2026-11-25/a.csv")
    assert (target.bucket, target.key) == ("landing", "incoming/2026-11-25/a.csv")
    with pytest.raises(LandingFileError, match="expected s3://bucket/key"):
        s3_object("s3://landing-only")
