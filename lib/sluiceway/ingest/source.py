"""The bytes of one landing file, pinned to one S3 object version for the whole ingest.

A landing key can be overwritten (a partner's resend, a redrive of an old event). The ledger
records the version id the event named, so the driver's scan and every executor's range read
fetch exactly that version (`GetObject` with `VersionId`), never whatever `s3://bucket/key`
holds now; otherwise the ingest would record one version and read another, and an overwrite
mid-run would break the chunk plan. Local files have no versions and are read in place.

The S3 endpoint and credentials come from the standard AWS chain: the job's role on AWS, and
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for an S3-compatible server, the same variables
pyarrow's S3 filesystem reads, so the driver and every executor reach the same store.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sluiceway.errors import LandingFileError
from sluiceway.locations import is_s3, local_path, split_s3

# S3's answers when the version id names nothing readable: deleted or never existed
# (NoSuchVersion, or a bare 404 on HEAD), malformed (InvalidArgument), a delete marker
# (MethodNotAllowed), or the key is gone altogether (NoSuchKey).
_VERSION_GONE = {"NoSuchVersion", "NoSuchKey", "404", "InvalidArgument", "MethodNotAllowed"}
_KEY_GONE = {"NoSuchKey", "404", "NoSuchBucket"}
_CHANGED_ACTION = (
    "Nothing was published. Re-run the ingest with the object's version id "
    "(--source-version) so every read sees the same bytes"
)


@dataclass(frozen=True)
class S3Object:
    """Bucket and key of an S3 landing location."""

    bucket: str
    key: str


def s3_object(location: str) -> S3Object | None:
    """Bucket and key of an S3 URI; None for a local path."""
    if not is_s3(location):
        return None
    bucket, key = split_s3(location)
    if not bucket or not key:
        raise LandingFileError(
            location, "not an S3 object URI", "expected s3://bucket/key", "Fix the landing URI"
        )
    return S3Object(bucket, key)


@functools.cache
def s3_client() -> Any:
    """One client per process: an executor reads many ranges, and a client takes ~0.1 s to build.

    Reads are idempotent, so botocore's standard retries may repeat them.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=120
    )
    return boto3.session.Session().client("s3", config=config)


def resolve_version(location: str) -> str | None:
    """The current version id of an S3 object (HEAD), to pin one version for the whole run.

    None for local files and for objects in a bucket that never had versioning enabled.
    """
    target = s3_object(location)
    if target is None:
        return None
    try:
        head = s3_client().head_object(Bucket=target.bucket, Key=target.key)
    except ClientError as error:
        _raise_landing_error(location, None, error)
        raise
    version: str | None = head.get("VersionId")
    return version


def open_blocks(location: str, version: str | None, block_bytes: int) -> Iterator[bytes]:
    """The whole file (that version of the S3 object) as blocks, read sequentially.

    The file or object is opened now, so a missing one fails here, before any block.
    """
    target = s3_object(location)
    if target is None:
        _refuse_local_version(location, version)
        return _local_blocks(_open_local(location), block_bytes)
    body = _get_object(location, target, version)["Body"]
    return _stream_blocks(body, block_bytes)


def read_range(location: str, version: str | None, start: int, end: int) -> bytes:
    """Bytes [start, end) of the file or of that S3 object version: one executor's chunk."""
    if end <= start:
        return b""
    target = s3_object(location)
    if target is None:
        _refuse_local_version(location, version)
        data = _local_range(location, start, end)
    else:
        response = _get_object(location, target, version, Range=f"bytes={start}-{end - 1}")
        data = response["Body"].read()
    if len(data) != end - start:
        raise LandingFileError(
            location,
            "file changed during the ingest",
            f"bytes {start}-{end} planned by the scan, {len(data)} bytes found",
            _CHANGED_ACTION,
        )
    return data


def _get_object(location: str, target: S3Object, version: str | None, **extra: str) -> Any:
    pinned = {"VersionId": version} if version else {}
    try:
        return s3_client().get_object(Bucket=target.bucket, Key=target.key, **pinned, **extra)
    except ClientError as error:
        _raise_landing_error(location, version, error)
        raise


def _raise_landing_error(location: str, version: str | None, error: ClientError) -> None:
    """S3's answer as a LandingFileError a person can act on; anything else (throttling, an
    outage) is left to the caller to re-raise as the infrastructure error it is."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = error.response.get("Error", {}).get("Message") or code
    if version and code in _VERSION_GONE:
        raise LandingFileError(
            location,
            "object version not found",
            f"version {version} does not exist (deleted, or never written): S3 said {message}",
            "Nothing was published. Ingest the version that exists with its id from the "
            "bucket's version list, or restore this version",
        ) from error
    if code in _KEY_GONE:
        raise LandingFileError(
            location, "file not found", f"S3 said {message}", "Check the S3 URI"
        ) from error
    if code in ("AccessDenied", "403"):
        raise LandingFileError(
            location,
            "access denied",
            f"S3 said {message}",
            "The job's role needs s3:GetObject and s3:GetObjectVersion on this key",
        ) from error
    if code == "InvalidRange":
        raise LandingFileError(
            location, "file changed during the ingest", f"S3 said {message}", _CHANGED_ACTION
        ) from error


def _stream_blocks(body: Any, block_bytes: int) -> Iterator[bytes]:
    with body:
        yield from body.iter_chunks(block_bytes)


def _refuse_local_version(location: str, version: str | None) -> None:
    if version:
        raise LandingFileError(
            location,
            "version id for a local file",
            f"version {version} was given, but only s3:// objects have versions",
            "Leave out --source-version for a local file",
        )


def _open_local(location: str) -> int:
    try:
        return os.open(local_path(location), os.O_RDONLY)
    except OSError as error:
        raise LandingFileError(
            location, "file not found", str(error), "Check the path and its permissions"
        ) from error


def _local_blocks(fd: int, block_bytes: int) -> Iterator[bytes]:
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        while block := handle.read(block_bytes):
            yield block


def _local_range(location: str, start: int, end: int) -> bytes:
    fd = _open_local(location)
    try:
        parts: list[bytes] = []
        offset = start
        while offset < end:
            part = os.pread(fd, end - offset, offset)
            if not part:
                break
            parts.append(part)
            offset += len(part)
        return b"".join(parts)
    finally:
        os.close(fd)
