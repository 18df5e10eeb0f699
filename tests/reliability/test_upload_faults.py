"""The landing uploader under real faults: overlapping cron runs, a dropped answer, a part
corrupted on the wire, an unreachable endpoint, a run killed mid-upload.

Faults come from a proxy on 127.0.0.1 in front of a real SeaweedFS server (see
tests/fixtures/s3_server.py); the runs are real `sluiceway upload` processes where the
behaviour depends on being separate processes.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.s3_server import REGION, FaultyProxy, S3Endpoint
from sluiceway.upload import RetryPolicy, TransferSettings, UploadOptions, run_upload, s3_client
from sluiceway.upload.transfer import MiB

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("s3_credentials")]

PREFIX = "landing"


def landing_bytes(size: int) -> bytes:
    row = b"txn-00000001,2026-11-26T10:00:00Z,12.50,EUR\n"
    return (row * (size // len(row) + 1))[:size]


def land(inbox: Path, name: str, content: bytes) -> Path:
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    path.write_bytes(content)
    (inbox / f"{name}.done").touch()
    return path


def upload_command(tmp_path: Path, bucket: str, endpoint: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sluiceway.cli",
        "upload",
        f"--watch-dir={tmp_path / 'inbox'}",
        f"--bucket={bucket}",
        f"--prefix={PREFIX}",
        f"--archive-dir={tmp_path / 'archive'}",
        f"--endpoint-url={endpoint}",
        "--part-size-mb=5",
        "--concurrency=1",
        "--retry-delay=0.05",
        *extra,
    ]


def options(tmp_path: Path, bucket: str) -> UploadOptions:
    return UploadOptions(
        watch_dir=tmp_path / "inbox",
        bucket=bucket,
        archive_dir=tmp_path / "archive",
        prefix=PREFIX,
        transfer=TransferSettings(
            part_size=5 * MiB, concurrency=2, retry=RetryPolicy(attempts=3, first_delay=0.05)
        ),
    )


def object_versions(endpoint: S3Endpoint, bucket: str) -> list[str]:
    listing = endpoint.client().list_object_versions(Bucket=bucket)
    return [version["Key"] for version in listing.get("Versions", [])]


def test_two_overlapping_runs_upload_the_file_once(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, faulty_s3: FaultyProxy
) -> None:
    land(tmp_path / "inbox", "overlap.csv", landing_bytes(12 * MiB))
    command = upload_command(tmp_path, s3_bucket, faulty_s3.url)
    faulty_s3.hold()
    first = subprocess.Popen(
        command, env=s3_server.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # The first run's HEAD comes after it took the file's lock: it is mid-upload from here on.
    faulty_s3.wait_for_arrival("HEAD", "overlap.csv")

    second = subprocess.run(
        command, env=s3_server.environ(), capture_output=True, text=True, timeout=30
    )
    requests_while_first_was_held = len(faulty_s3.arrived())
    faulty_s3.release()
    first_out, first_err = first.communicate(timeout=120)

    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["busy"] == ["overlap.csv"]
    assert requests_while_first_was_held == 1  # the second run never reached S3
    assert first.returncode == 0, first_err
    assert json.loads(first_out)["uploaded"] == ["overlap.csv"]
    assert len(faulty_s3.seen("POST", "?uploads")) == 1  # one CreateMultipartUpload in all
    assert object_versions(s3_server, s3_bucket) == [f"{PREFIX}/overlap.csv"]
    assert not (tmp_path / "inbox" / "overlap.csv").exists()


def test_answer_lost_after_complete_is_settled_by_412_and_equal_sha256(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, faulty_s3: FaultyProxy
) -> None:
    s3_server.client().put_bucket_versioning(
        Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    land(tmp_path / "inbox", "lost-answer.csv", landing_bytes(11 * MiB))
    faulty_s3.drop_response_once("POST", "uploadId=")

    report = run_upload(s3_client(faulty_s3.url, REGION), options(tmp_path, s3_bucket))

    assert [(o.name, o.status) for o in report.outcomes] == [("lost-answer.csv", "uploaded")]
    completes = faulty_s3.seen("POST", "uploadId=")
    answers = [(request.status, request.error_code) for request in completes]
    # SeaweedFS checks If-None-Match first, as S3 does; moto replays the finished upload.
    second = (412, "PreconditionFailed") if s3_server.server == "seaweedfs" else (200, None)
    assert answers == [(None, None), second]
    assert object_versions(s3_server, s3_bucket) == [f"{PREFIX}/lost-answer.csv"]
    assert (tmp_path / "archive" / "lost-answer.csv").exists()


def test_part_corrupted_on_the_wire_is_rejected_and_sent_again(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, faulty_s3: FaultyProxy
) -> None:
    if not s3_server.verifies_part_checksums:
        pytest.skip(f"{s3_server.server} accepts parts whose checksum does not match")
    content = landing_bytes(12 * MiB)
    land(tmp_path / "inbox", "corrupted.csv", content)
    faulty_s3.corrupt_once("PUT", "partNumber=2")

    report = run_upload(s3_client(faulty_s3.url, REGION), options(tmp_path, s3_bucket))

    assert [(o.name, o.status) for o in report.outcomes] == [("corrupted.csv", "uploaded")]
    part_two = [(r.status, r.error_code) for r in faulty_s3.seen("PUT", "partNumber=2")]
    assert part_two == [(400, "BadDigest"), (200, None)]  # the CRC32 caught it, then re-sent
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{PREFIX}/corrupted.csv")
    assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(content).digest()


def test_file_that_keeps_failing_stays_put_with_a_json_line_and_exit_code_4(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}"
    land(tmp_path / "inbox", "stuck.csv", landing_bytes(1000))
    command = upload_command(tmp_path, s3_bucket, unreachable, "--attempts=2")

    run = subprocess.run(command, env=s3_server.environ(), capture_output=True, text=True)

    assert run.returncode == 4
    assert json.loads(run.stdout)["failed"] == ["stuck.csv"]
    logged = [json.loads(line) for line in run.stderr.splitlines()]
    assert [entry["event"] for entry in logged] == ["retry", "upload_failed"]
    assert logged[-1]["file"] == "stuck.csv" and logged[-1]["level"] == "error"
    assert unreachable in logged[-1]["error"]
    assert (tmp_path / "inbox" / "stuck.csv").read_bytes() == landing_bytes(1000)
    assert not (tmp_path / "archive").exists() or not any((tmp_path / "archive").iterdir())


def test_run_killed_mid_upload_leaves_the_file_and_the_next_run_uploads_it(
    tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str, faulty_s3: FaultyProxy
) -> None:
    content = landing_bytes(16 * MiB)
    land(tmp_path / "inbox", "killed.csv", content)
    command = upload_command(tmp_path, s3_bucket, faulty_s3.url)
    first = subprocess.Popen(command, env=s3_server.environ(), stderr=subprocess.DEVNULL)
    faulty_s3.wait_for_arrival("PUT", "partNumber=1")
    faulty_s3.hold()  # freeze the run after its first part, then kill it
    faulty_s3.wait_for_arrival("PUT", "partNumber=2")
    first.send_signal(signal.SIGKILL)
    first.wait()
    faulty_s3.release()
    assert (tmp_path / "inbox" / "killed.csv").exists()
    assert object_versions(s3_server, s3_bucket) == []

    second = subprocess.run(command, env=s3_server.environ(), capture_output=True, text=True)

    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["uploaded"] == ["killed.csv"]
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{PREFIX}/killed.csv")
    assert stored["Body"].read() == content
