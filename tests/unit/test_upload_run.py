"""A cron run's decisions that need no S3: part plan, keys, hashing, locks, dry runs."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.upload import UploadOptions, run_upload
from sluiceway.upload.run import FileOutcome, UploadReport
from sluiceway.upload.transfer import (
    MAX_PARTS,
    MIN_PART_SIZE,
    MiB,
    TransferSettings,
    file_sha256,
    object_key,
    part_ranges,
)

pytestmark = pytest.mark.unit


def test_parts_cover_the_file_contiguously_with_a_short_last_part() -> None:
    parts = part_ranges(100 * MiB + 7, 16 * MiB)

    assert [number for number, _, _ in parts] == list(range(1, 8))
    assert all(offset == (n - 1) * 16 * MiB for n, offset, _ in parts)
    assert sum(length for _, _, length in parts) == 100 * MiB + 7
    assert parts[-1][2] == 4 * MiB + 7


def test_part_size_is_raised_to_s3_minimum_and_to_fit_ten_thousand_parts() -> None:
    assert part_ranges(20 * MiB, 1 * MiB)[0][2] == MIN_PART_SIZE
    huge = 100 * 1024 * MiB
    assert len(part_ranges(huge, MIN_PART_SIZE)) <= MAX_PARTS


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("", "tx.csv"),
        ("landing", "landing/tx.csv"),
        ("/landing/partner-a/", "landing/partner-a/tx.csv"),
    ],
)
def test_object_key_joins_prefix_and_name_without_stray_slashes(prefix: str, key: str) -> None:
    assert object_key(prefix, "tx.csv") == key


def test_sha256_is_read_across_chunk_boundaries(tmp_path: Path) -> None:
    content = os.urandom(8 * MiB + 3)
    path = tmp_path / "tx.csv"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert file_sha256(fd, len(content)) == hashlib.sha256(content).hexdigest()
    finally:
        os.close(fd)


def options_for(tmp_path: Path, **overrides: object) -> UploadOptions:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    settings: dict[str, object] = {
        "watch_dir": tmp_path / "inbox",
        "bucket": "landing",
        "archive_dir": tmp_path / "archive",
    }
    settings.update(overrides)
    return UploadOptions(**settings)  # type: ignore[arg-type]


def test_a_file_locked_by_another_run_is_reported_busy_and_left_alone(tmp_path: Path) -> None:
    options = options_for(tmp_path)
    landing = options.watch_dir / "tx.csv"
    landing.write_text("a,b\n")
    (options.watch_dir / "tx.csv.done").touch()
    with open(landing, "rb") as other_run:
        fcntl.flock(other_run, fcntl.LOCK_EX)
        # No S3 client at all: a busy file must not reach S3.
        report = run_upload(None, options)

    assert [(o.name, o.status) for o in report.outcomes] == [("tx.csv", "busy")]
    assert report.exit_code == 0
    assert landing.exists() and not any(options.archive_dir.iterdir())


def test_dry_run_reports_and_changes_nothing(tmp_path: Path) -> None:
    options = options_for(tmp_path, dry_run=True)
    (options.watch_dir / "ready.csv").write_text("a\n")
    (options.watch_dir / "ready.csv.done").touch()
    (options.watch_dir / "new.csv").write_text("b\n")

    report = run_upload(None, options)

    assert report.summary()["would_upload"] == ["ready.csv"]
    assert report.summary()["waiting"] == ["new.csv"]
    assert sorted(p.name for p in options.watch_dir.iterdir()) == [
        "new.csv",
        "ready.csv",
        "ready.csv.done",
    ]
    assert not options.archive_dir.exists()


def test_archive_inside_the_watch_folder_itself_is_refused(tmp_path: Path) -> None:
    options = options_for(tmp_path, archive_dir=tmp_path / "inbox")
    with pytest.raises(ConfigurationError, match="--archive-dir"):
        run_upload(None, options)


def test_exit_code_is_4_when_any_file_failed_or_conflicts() -> None:
    fine = [FileOutcome("a.csv", "uploaded", ""), FileOutcome("b.csv", "waiting", "")]
    assert UploadReport(fine).exit_code == 0
    assert UploadReport([*fine, FileOutcome("c.csv", "conflict", "")]).exit_code == 4
    assert UploadReport([*fine, FileOutcome("d.csv", "failed", "")]).exit_code == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"part_size": 4 * MiB}, "at least 5 MiB"),
        ({"concurrency": 0}, "one part must be in flight"),
        ({"checksum": "MD5"}, "use one of CRC32, SHA256"),
    ],
)
def test_transfer_settings_s3_cannot_honour_are_refused(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TransferSettings(**settings)  # type: ignore[arg-type]
