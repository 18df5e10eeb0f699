"""Version-pinned landing reads against a real S3-compatible server with a versioned bucket.

The key is overwritten after the event named its version (a partner's resend, a redrive):
every read of that version still returns its own bytes, and a version that is gone fails
with an error naming it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fixtures.s3_server import S3Endpoint
from sluiceway.errors import LandingFileError
from sluiceway.generate import generate_landing_file, manifest_path
from sluiceway.ingest import ingest_file
from sluiceway.ingest.source import open_blocks, read_range, resolve_version
from sluiceway.tables import INGEST_LEDGER

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("s3_job_environment")]

KEY = "incoming/2026-11-25/partner.csv"
FIRST = b"transaction_id,amount\n" + b"".join(b"t%05d,%d.00\n" % (i, i) for i in range(3000))
SECOND = b"transaction_id,amount\nresent,1.00\n"


def put(s3_server: S3Endpoint, bucket: str, body: bytes, key: str = KEY) -> str:
    return s3_server.client().put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


@pytest.fixture
def overwritten(s3_server: S3Endpoint, versioned_bucket: str) -> tuple[str, str, str]:
    """The URI, the first version's id and the second's: the key was written twice."""
    first = put(s3_server, versioned_bucket, FIRST)
    second = put(s3_server, versioned_bucket, SECOND)
    assert first != second
    return f"s3://{versioned_bucket}/{KEY}", first, second


def test_reads_of_an_overwritten_version_return_that_versions_bytes(overwritten) -> None:
    uri, first, second = overwritten

    assert read_range(uri, first, 22, 4000) == FIRST[22:4000]
    assert read_range(uri, first, len(FIRST) - 9, len(FIRST)) == FIRST[-9:]
    blocks = list(open_blocks(uri, first, 16 * 1024))
    assert len(blocks) > 1
    assert b"".join(blocks) == FIRST
    assert b"".join(open_blocks(uri, second, 16 * 1024)) == SECOND
    assert b"".join(open_blocks(uri, None, 16 * 1024)) == SECOND


def test_unpinned_range_past_the_overwritten_object_is_a_changed_file(overwritten) -> None:
    uri, _first, _second = overwritten
    for start, end in ((22, 4000), (len(SECOND) + 5, 4000)):
        with pytest.raises(LandingFileError) as raised:
            read_range(uri, None, start, end)
        assert raised.value.rule == "file changed during the ingest"
        assert "--source-version" in str(raised.value)


def test_resolve_version_pins_the_current_version_for_the_run(
    s3_server: S3Endpoint, overwritten
) -> None:
    uri, _first, second = overwritten
    pinned = resolve_version(uri)
    assert pinned == second

    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    put(s3_server, bucket, b"transaction_id,amount\nthird,3.00\n")

    assert b"".join(open_blocks(uri, pinned, 1024)) == SECOND
    assert read_range(uri, pinned, 0, len(SECOND)) == SECOND


def test_deleted_version_fails_naming_the_version(s3_server: S3Endpoint, overwritten) -> None:
    uri, first, _second = overwritten
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    s3_server.client().delete_object(Bucket=bucket, Key=KEY, VersionId=first)

    with pytest.raises(LandingFileError) as ranged:
        read_range(uri, first, 0, 100)
    with pytest.raises(LandingFileError) as whole:
        open_blocks(uri, first, 1024)
    for raised in (ranged, whole):
        assert raised.value.rule == "object version not found"
        assert first in str(raised.value)
        assert uri in str(raised.value)


def test_unknown_version_and_missing_key_fail_clearly(versioned_bucket: str) -> None:
    uri = f"s3://{versioned_bucket}/{KEY}"
    with pytest.raises(LandingFileError, match="file not found"):
        resolve_version(uri)
    with pytest.raises(LandingFileError, match="file not found"):
        open_blocks(uri, None, 1024)
    with pytest.raises(LandingFileError, match="object version not found") as raised:
        read_range(uri, "no-such-version-id", 0, 10)
    assert "no-such-version-id" in str(raised.value)


def test_ingest_reads_the_recorded_version_after_the_key_was_overwritten(
    spark,
    isolated_settings,
    s3_server: S3Endpoint,
    versioned_bucket: str,
    tmp_path: Path,
    duckdb_query,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The event named version 1; by the time the ingest runs the partner resent the file.

    Version 1 spans two 1 MB chunks, so both the driver's scan and the executors' range reads
    must be pinned; its manifest beside the key makes the ingest check version 1's figures.
    """
    # Python workers of the shared session get the endpoint as an executor on AWS gets its
    # credentials: from their environment, not from the driver's process.
    for name, value in s3_server.job_environ().items():
        if name.startswith("AWS_"):
            monkeypatch.setitem(spark.sparkContext.environment, name, value)
    original, resent = tmp_path / "original.csv", tmp_path / "resent.csv"
    expected = generate_landing_file(original, 9_000, seed=21, defect_rate=0.01)
    generate_landing_file(resent, 400, seed=22)
    assert original.stat().st_size > 1024 * 1024
    first = put(s3_server, versioned_bucket, original.read_bytes())
    put(s3_server, versioned_bucket, manifest_path(original).read_bytes(), KEY + ".manifest.json")
    put(s3_server, versioned_bucket, resent.read_bytes())
    uri = f"s3://{versioned_bucket}/{KEY}"

    result = ingest_file(spark, isolated_settings, uri, source_version=first)

    assert result.status == "completed", result.message
    assert "manifest matched" in result.message
    assert (result.lines_read, result.accepted) == (expected.lines, expected.accepted)
    assert result.accepted + result.rejected == expected.records
    ledger = spark.table(isolated_settings.table(INGEST_LEDGER)).first()
    assert ledger.source_version == first
    assert ledger.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    assert duckdb_query(isolated_settings, "SELECT COUNT(*) FROM transactions") == [
        (expected.accepted,)
    ]
