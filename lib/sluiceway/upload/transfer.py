"""One landing file into S3, exactly once: per-part checksums and a conditional final write.

The final write carries `If-None-Match: *`, so S3 itself refuses to replace an existing
object, whoever else is writing. A 412 is then settled by the sha256 stored in the object's
metadata: the same sha256 means the object is this file (an earlier attempt whose answer
was lost), a different one means a conflicting file with the same name.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sluiceway.errors import ConfigurationError, SluicewayError
from sluiceway.upload.retry import RetryPolicy, http_status, is_precondition_failed

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's maximum number of parts in one upload
METADATA_SHA256 = "sha256"  # stored as x-amz-meta-sha256: the file's identity, hex
HASH_CHUNK = 8 * MiB

T = TypeVar("T")


class LandingConflictError(SluicewayError):
    """The key already holds a different file; the local file is kept for a person to decide."""

    exit_code = 4


class UploadFailedError(SluicewayError):
    """The upload did not complete or could not be verified; the local file is kept."""

    exit_code = 4


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# Algorithm -> (upload_part argument / response field, digest function).
CHECKSUMS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "CRC32": ("ChecksumCRC32", _crc32),
    "SHA256": ("ChecksumSHA256", _sha256),
}


@dataclass(frozen=True)
class LandingFile:
    """An open, locked landing file and its identity, computed once per run."""

    path: Path
    fd: int
    size: int
    sha256: str


@dataclass(frozen=True)
class TransferSettings:
    """How to move bytes: part size, parallel parts, checksum algorithm, retries."""

    part_size: int = 64 * MiB
    concurrency: int = 4
    checksum: str = "CRC32"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE or self.concurrency < 1:
            raise ConfigurationError(
                f"part size {self.part_size} bytes, concurrency {self.concurrency}: S3 needs "
                f"parts of at least {MIN_PART_SIZE // MiB} MiB and one part must be in flight; "
                "fix --part-size-mb or --concurrency"
            )
        if self.checksum not in CHECKSUMS:
            raise ConfigurationError(
                f"checksum {self.checksum!r} is not supported; use one of {', '.join(CHECKSUMS)}"
            )


@dataclass(frozen=True)
class TransferResult:
    """What happened to one landing file in S3."""

    key: str
    outcome: str  # "uploaded" | "already_uploaded"
    parts: int
    seconds: float
    note: str = ""
    version_id: str | None = None  # the object's S3 version, when the bucket is versioned


def s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """An S3 client whose retries are ours and whose checksums are the ones we send."""
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=120,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=16,
    )
    # A fresh session: credentials are resolved now, not cached in boto3's module-level default.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def object_key(prefix: str, name: str) -> str:
    """The landing object key: `prefix/name`, without doubled or leading slashes."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def file_sha256(fd: int, size: int) -> str:
    """sha256 of the file behind `fd`, read with pread so the offset is left alone."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(HASH_CHUNK, size - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """(part number, offset, length) for a multipart upload; grows the part size when the
    file would need more than S3's 10,000 parts."""
    part_size = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
    return [
        (number, offset, min(part_size, size - offset))
        for number, offset in enumerate(range(0, size, part_size), start=1)
    ]


def composite_checksum(algorithm: str, part_digests: list[bytes]) -> str:
    """The checksum S3 reports for a multipart object: digest of the part digests, "-N"."""
    _, digest = CHECKSUMS[algorithm]
    return f"{_b64(digest(b''.join(part_digests)))}-{len(part_digests)}"


class Transfer:
    """Moves one landing file to `s3://bucket/key`; see the module docstring for the rules."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        landing: LandingFile,
        settings: TransferSettings,
        logger: logging.Logger,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.landing = landing
        self.settings = settings
        self.logger = logger
        self.target = f"s3://{bucket}/{key}"

    def run(self) -> TransferResult:
        """Upload unless the object is already there; verify before returning."""
        started = time.monotonic()
        existing = self._head()
        if existing is not None:
            self._settle_existing(existing)
            return TransferResult(
                self.key,
                "already_uploaded",
                0,
                time.monotonic() - started,
                "found before upload",
                existing.get("VersionId"),
            )
        if self.landing.size <= self.settings.part_size:
            parts = 1
            expected, note = self._put_single()
        else:
            parts, expected, note = self._put_multipart()
        stored = self._verify(expected)
        return TransferResult(
            self.key,
            "uploaded",
            parts,
            time.monotonic() - started,
            note,
            stored.get("VersionId"),
        )

    def _call(self, operation: Callable[[], T], what: str) -> T:
        return self.settings.retry.call(operation, f"{what} {self.target}", self.logger)

    def _head(self) -> dict[str, Any] | None:
        def head() -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = self.client.head_object(
                    Bucket=self.bucket, Key=self.key, ChecksumMode="ENABLED"
                )
            except ClientError as error:
                if http_status(error) == 404:
                    return None
                raise
            return found

        try:
            return self._call(head, "HeadObject")
        except ClientError as error:
            action = (
                "The uploader needs s3:GetObject and s3:ListBucket (without ListBucket a "
                "missing key answers 403, not 404); fix the instance role or the bucket name"
                if http_status(error) == 403
                else "Check the bucket name and endpoint; the next run tries again"
            )
            raise UploadFailedError(
                f"{self.landing.path}: cannot check whether {self.target} exists: {error}. {action}"
            ) from error

    def _settle_existing(self, existing: dict[str, Any]) -> None:
        """Accept an existing object only when it is this file (same sha256 and size)."""
        theirs = existing.get("Metadata", {}).get(METADATA_SHA256)
        if theirs == self.landing.sha256 and existing.get("ContentLength") == self.landing.size:
            return
        raise LandingConflictError(
            f"{self.landing.path}: {self.target} already exists with sha256 "
            f"{theirs or '(none recorded)'} and {existing.get('ContentLength')} bytes, but the "
            f"local file has sha256 {self.landing.sha256} and {self.landing.size} bytes. The "
            "object was not overwritten and the local file was kept; ask the partner which "
            "one is right, then rename the local file or remove one of them"
        )

    def _after_precondition_failed(self) -> str:
        """A 412 on the final write: equal sha256 means our earlier attempt landed."""
        existing = self._head()
        if existing is None:
            raise UploadFailedError(
                f"{self.landing.path}: S3 answered 412 (exists) for {self.target} but the "
                "object cannot be found; run the uploader again"
            )
        self._settle_existing(existing)
        return "confirmed after 412: the object already held this file's sha256"

    def _metadata(self) -> dict[str, str]:
        return {METADATA_SHA256: self.landing.sha256}

    def _put_single(self) -> tuple[tuple[str, str] | None, str]:
        def put() -> None:
            body = os.pread(self.landing.fd, self.landing.size, 0)
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                IfNoneMatch="*",
                ChecksumSHA256=_b64(bytes.fromhex(self.landing.sha256)),
                Metadata=self._metadata(),
            )

        try:
            self._call(put, "PutObject")
        except ClientError as error:
            if not is_precondition_failed(error):
                raise
            return None, self._after_precondition_failed()
        return ("ChecksumSHA256", _b64(bytes.fromhex(self.landing.sha256))), ""

    def _put_multipart(self) -> tuple[int, tuple[str, str] | None, str]:
        algorithm = self.settings.checksum
        argument, digest = CHECKSUMS[algorithm]
        ranges = part_ranges(self.landing.size, self.settings.part_size)
        created = self._call(
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ChecksumAlgorithm=algorithm,
                Metadata=self._metadata(),
            ),
            "CreateMultipartUpload",
        )
        upload_id = created["UploadId"]

        def send_part(part: tuple[int, int, int]) -> tuple[dict[str, Any], bytes]:
            number, offset, length = part

            def upload() -> tuple[dict[str, Any], bytes]:
                # Re-read on every attempt: a part rejected as corrupted is sent from disk again.
                body = os.pread(self.landing.fd, length, offset)
                checksum = _b64(digest(body))
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    **{argument: checksum},
                )
                return {"PartNumber": number, "ETag": response["ETag"], argument: checksum}, (
                    base64.b64decode(checksum)
                )

            return self._call(upload, f"UploadPart {number}/{len(ranges)} of")

        try:
            with ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency)) as pool:
                results = list(pool.map(send_part, ranges))
            self._call(
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [part for part, _ in results]},
                    IfNoneMatch="*",
                ),
                "CompleteMultipartUpload",
            )
        except ClientError as error:
            self._abort(upload_id)
            if is_precondition_failed(error):
                return len(ranges), None, self._after_precondition_failed()
            raise
        except BaseException:
            self._abort(upload_id)
            raise
        expected = composite_checksum(algorithm, [part_digest for _, part_digest in results])
        return len(ranges), (argument, expected), ""

    def _abort(self, upload_id: str) -> None:
        """Best effort: parts of an unfinished upload cost storage until aborted (the bucket's
        lifecycle rule catches what a killed run leaves behind)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception as error:
            self.logger.warning(
                "could not abort multipart upload of %s",
                self.target,
                extra={"fields": {"event": "abort_failed", "error": str(error)}},
            )

    def _verify(self, expected_checksum: tuple[str, str] | None) -> dict[str, Any]:
        """Archive only what S3 holds: size, sha256 metadata and, when S3 reports it, the
        checksum of what this run wrote (whole-object or composite of parts) must match."""
        existing = self._head()
        problems = []
        if existing is None:
            problems.append("object not found after upload")
        else:
            if existing.get("ContentLength") != self.landing.size:
                problems.append(
                    f"size {existing.get('ContentLength')} != local {self.landing.size}"
                )
            if existing.get("Metadata", {}).get(METADATA_SHA256) != self.landing.sha256:
                problems.append("sha256 metadata differs from the local file")
            if expected_checksum is not None:
                argument, expected = expected_checksum
                reported = existing.get(argument)
                # "-N" marks a composite of part checksums; a server that reports a
                # whole-object checksum instead gives nothing to compare against.
                comparable = reported is not None and ("-" in reported) == ("-" in expected)
                if comparable and reported != expected:
                    problems.append(f"{argument} {reported} != expected {expected}")
        if existing is None or problems:
            raise UploadFailedError(
                f"{self.landing.path}: {self.target} could not be verified "
                f"({'; '.join(problems)}). The local file was kept; inspect the object and "
                "delete it if it is wrong, then run the uploader again"
            )
        return existing
