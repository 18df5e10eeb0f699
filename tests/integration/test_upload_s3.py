"""The landing uploader against a real S3-compatible server (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from fixtures.s3_server import REGION, FaultyProxy, S3Endpoint
from sluiceway.upload import RetryPolicy, TransferSettings, UploadOptions, run_upload, s3_client
from sluiceway.upload.transfer import MiB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("s3_credentials")]

PREFIX = "landing/partner-a"


def make_options(tmp_path: Path, bucket: str, **overrides: Any) -> UploadOptions:
    settings = {
        "watch_dir": tmp_path / "inbox",
        "bucket": bucket,
        "archive_dir": tmp_path / "archive",
        "prefix": PREFIX,
        "min_age": 0.3,
        "transfer": TransferSettings(
            part_size=5 * MiB,
            concurrency=2,
            retry=RetryPolicy(attempts=3, first_delay=0.05),
        ),
    }
    settings.update(overrides)
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return UploadOptions(**settings)


def land(options: UploadOptions, name: str, content: bytes, marker: bool = True) -> Path:
    path = options.watch_dir / name
    path.write_bytes(content)
    if marker:
        (options.watch_dir / f"{name}.done").touch()
    return path


def statuses(report: Any) -> dict[str, str]:
    return {outcome.name: outcome.status for outcome in report.outcomes}


def csv_bytes(rows: int, seed: str = "") -> bytes:
    lines = [f"txn-{seed}{i:08d},2026-11-26T10:00:00Z,{i % 997}.25,EUR\n" for i in range(rows)]
    return ("transaction_id,event_time,amount,currency\n" + "".join(lines)).encode()


def test_marked_file_is_uploaded_with_its_sha256_and_archived(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    options = make_options(tmp_path, s3_bucket)
    content = csv_bytes(1000)
    land(options, "tx_2026-11-26.csv", content)

    report = run_upload(s3_client(s3_server.url, REGION), options)

    assert statuses(report) == {"tx_2026-11-26.csv": "uploaded"}
    assert report.exit_code == 0
    key = f"{PREFIX}/tx_2026-11-26.csv"
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=key)
    assert stored["Body"].read() == content
    assert stored["Metadata"] == {"sha256": hashlib.sha256(content).hexdigest()}
    assert sorted(p.name for p in options.watch_dir.iterdir()) == [".sluiceway-upload"]
    assert sorted(p.name for p in options.archive_dir.iterdir()) == [
        "tx_2026-11-26.csv",
        "tx_2026-11-26.csv.done",
    ]


def test_growing_file_waits_until_size_and_mtime_stay_unchanged(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    options = make_options(tmp_path, s3_bucket, min_age=0.5)
    client = s3_client(s3_server.url, REGION)
    path = land(options, "growing.csv", csv_bytes(500), marker=False)
    land(options, "partner-upload.csv.part", b"a transfer still running", marker=False)

    first = run_upload(client, options)
    time.sleep(0.6)
    with path.open("ab") as growing:
        growing.write(csv_bytes(500, seed="b"))
    second = run_upload(client, options)
    third_too_early = run_upload(client, options)
    time.sleep(0.6)
    fourth = run_upload(client, options)

    assert statuses(first) == {"growing.csv": "waiting"}
    assert "first seen" in first.outcomes[0].detail
    assert statuses(second) == {"growing.csv": "waiting"}
    assert "still changing" in second.outcomes[0].detail
    assert statuses(third_too_early) == {"growing.csv": "waiting"}
    assert statuses(fourth) == {"growing.csv": "uploaded"}
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{PREFIX}/growing.csv")
    assert stored["Body"].read() == csv_bytes(500) + csv_bytes(500, seed="b")
    assert (options.watch_dir / "partner-upload.csv.part").exists()


def test_same_file_landing_again_is_recognised_without_a_second_write(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, faulty_s3: FaultyProxy
) -> None:
    options = make_options(tmp_path, s3_bucket)
    content = csv_bytes(200)
    land(options, "again.csv", content)
    run_upload(s3_client(s3_server.url, REGION), options)
    land(options, "again.csv", content)

    report = run_upload(s3_client(faulty_s3.url, REGION), options)

    assert statuses(report) == {"again.csv": "already_uploaded"}
    assert report.exit_code == 0
    assert faulty_s3.seen("PUT") == [] and faulty_s3.seen("POST") == []
    archived = sorted(p.name for p in options.archive_dir.iterdir())
    assert len(archived) == 4, archived  # both copies, each with its marker, none overwritten


def test_same_name_with_different_content_is_refused_and_kept(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    options = make_options(tmp_path, s3_bucket)
    client = s3_client(s3_server.url, REGION)
    original = csv_bytes(300)
    land(options, "daily.csv", original)
    run_upload(client, options)
    replacement = csv_bytes(300, seed="x")
    land(options, "daily.csv", replacement)

    report = run_upload(client, options)

    assert statuses(report) == {"daily.csv": "conflict"}
    assert report.exit_code == 4
    detail = report.outcomes[0].detail
    assert hashlib.sha256(original).hexdigest() in detail
    assert hashlib.sha256(replacement).hexdigest() in detail
    assert "was kept" in detail
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{PREFIX}/daily.csv")
    assert stored["Body"].read() == original
    assert (options.watch_dir / "daily.csv").read_bytes() == replacement
    assert (options.watch_dir / "daily.csv.done").exists()


def test_200_mb_file_goes_through_multipart_with_part_checksums(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    part_size = 16 * MiB
    options = make_options(
        tmp_path,
        s3_bucket,
        transfer=TransferSettings(part_size=part_size, concurrency=2),
    )
    path = options.watch_dir / "big.csv"
    block = csv_bytes(20_000)
    with path.open("wb") as big:
        while big.tell() < 200 * MiB:
            big.write(block)
    (options.watch_dir / "big.csv.done").touch()
    size = path.stat().st_size
    content = path.read_bytes()
    part_crcs = [
        zlib.crc32(content[offset : offset + part_size]).to_bytes(4, "big")
        for offset in range(0, size, part_size)
    ]
    expected_composite = (
        base64.b64encode(zlib.crc32(b"".join(part_crcs)).to_bytes(4, "big")).decode()
        + f"-{len(part_crcs)}"
    )

    started = time.monotonic()
    report = run_upload(s3_client(s3_server.url, REGION), options)
    seconds = time.monotonic() - started

    assert statuses(report) == {"big.csv": "uploaded"}, report.outcomes
    head = s3_server.client().head_object(
        Bucket=s3_bucket, Key=f"{PREFIX}/big.csv", ChecksumMode="ENABLED"
    )
    assert head["ContentLength"] == size
    assert head["Metadata"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert len(part_crcs) == 13
    if s3_server.server == "moto":  # moto reports the composite without its "-N" suffix
        expected_composite = expected_composite.rsplit("-", 1)[0]
    assert head["ChecksumCRC32"] == expected_composite
    print(f"200 MB multipart upload: {size / MiB / seconds:.0f} MiB/s ({seconds:.1f}s)")


def test_command_line_uploads_prints_a_summary_and_dry_run_changes_nothing(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    s3_server.client().put_bucket_versioning(
        Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    options = make_options(tmp_path, s3_bucket)
    land(options, "cli.csv", csv_bytes(50))
    land(options, "unmarked.csv", csv_bytes(10), marker=False)
    command = [
        sys.executable,
        "-m",
        "sluiceway.cli",
        "upload",
        f"--watch-dir={options.watch_dir}",
        f"--bucket={s3_bucket}",
        f"--prefix={PREFIX}",
        f"--archive-dir={options.archive_dir}",
        f"--endpoint-url={s3_server.url}",
        "--min-age=600",
    ]

    dry = subprocess.run(
        [*command, "--dry-run"], env=s3_server.environ(), capture_output=True, text=True
    )
    real = subprocess.run(command, env=s3_server.environ(), capture_output=True, text=True)

    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["would_upload"] == ["cli.csv"]
    assert json.loads(dry.stdout)["waiting"] == ["unmarked.csv"]
    assert real.returncode == 0, real.stderr
    summary = json.loads(real.stdout)
    assert summary["uploaded"] == ["cli.csv"] and summary["waiting"] == ["unmarked.csv"]
    logged = [json.loads(line) for line in real.stderr.splitlines()]
    assert [entry["event"] for entry in logged] == ["uploaded"]
    assert logged[0]["key"] == f"{PREFIX}/cli.csv"
    versions = s3_server.client().list_object_versions(Bucket=s3_bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == [logged[0]["version_id"]]
    keys = [
        item["Key"]
        for item in s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    ]
    assert keys == [f"{PREFIX}/cli.csv"]
    assert os.path.exists(options.watch_dir / "unmarked.csv")


def test_refused_credentials_fail_the_file_with_the_permissions_it_needs(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not s3_server.verifies_signatures:
        pytest.skip(f"{s3_server.server} accepts any signature")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    options = make_options(tmp_path, s3_bucket)
    land(options, "denied.csv", csv_bytes(10))

    report = run_upload(s3_client(s3_server.url, REGION), options)

    assert statuses(report) == {"denied.csv": "failed"}
    assert report.exit_code == 4
    assert "s3:ListBucket" in report.outcomes[0].detail
    assert (options.watch_dir / "denied.csv").exists()
