"""One cron run: find complete landing files, upload each exactly once, archive what landed.

Overlapping runs are expected (a 1 GB upload can outlast the cron interval). Each run takes
a non-blocking `flock` on the landing file itself, so two runs never work on the same file
and no lock files pile up; the run that loses the lock reports the file as busy.
A file leaves the watch folder only after S3 holds a verified copy; a failing file stays
where it is, is logged as one JSON line, and makes the exit code non-zero. With a check
(`--check`), a file that breaks a whole-file rule of the ingest (header, gzip) is not
uploaded either: the partner must resend it, and the pipeline never sees it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sluiceway.errors import ConfigurationError, SluicewayError
from sluiceway.logs import get_logger
from sluiceway.upload.readiness import ObservationStore, Readiness, marker_path, observe
from sluiceway.upload.retry import error_code
from sluiceway.upload.transfer import (
    LandingConflictError,
    LandingFile,
    Transfer,
    TransferSettings,
    UploadFailedError,
    file_sha256,
    object_key,
)

if TYPE_CHECKING:
    from sluiceway.settings import Settings

STATE_DIR_NAME = ".sluiceway-upload"
FAILED_EXIT_CODE = 4
LOGGER = get_logger(__name__)

# Outcome statuses, in the order the summary lists them.
UPLOADED = "uploaded"
ALREADY_UPLOADED = "already_uploaded"
WOULD_UPLOAD = "would_upload"
WAITING = "waiting"
BUSY = "busy"
CONFLICT = "conflict"
CHECK_FAILED = "check_failed"
FAILED = "failed"
STATUSES = (
    UPLOADED,
    ALREADY_UPLOADED,
    WOULD_UPLOAD,
    WAITING,
    BUSY,
    CONFLICT,
    CHECK_FAILED,
    FAILED,
)
# Statuses that make the run's exit code non-zero: a person must act on these files.
PROBLEMS = (CONFLICT, CHECK_FAILED, FAILED)


@dataclass(frozen=True)
class UploadOptions:
    """Everything one run needs; built by the CLI from its options."""

    watch_dir: Path
    bucket: str
    archive_dir: Path
    prefix: str = ""
    state_dir: Path | None = None
    min_age: float = 60.0
    dry_run: bool = False
    transfer: TransferSettings = field(default_factory=TransferSettings)
    # When set, each complete file is first checked (`sluiceway check`) with these settings.
    check_settings: Settings | None = None

    @property
    def observations_dir(self) -> Path:
        """Where observations between runs are kept; hidden inside the watch folder by default
        (hidden names are never uploaded)."""
        return self.state_dir or self.watch_dir / STATE_DIR_NAME


@dataclass(frozen=True)
class FileOutcome:
    """What one run did with one landing file."""

    name: str
    status: str
    detail: str
    key: str | None = None


@dataclass
class UploadReport:
    """The outcome of every landing file a run looked at."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def names(self, status: str) -> list[str]:
        return [outcome.name for outcome in self.outcomes if outcome.status == status]

    def summary(self) -> dict[str, list[str]]:
        """Status -> file names, for the one JSON line the CLI prints."""
        return {status: self.names(status) for status in STATUSES}

    @property
    def exit_code(self) -> int:
        """Non-zero when a file failed, conflicts or fails the check: cron mails it, monitoring
        alerts on it."""
        failed = any(outcome.status in PROBLEMS for outcome in self.outcomes)
        return FAILED_EXIT_CODE if failed else 0


def run_upload(
    client: Any, options: UploadOptions, clock: Callable[[], float] = time.time
) -> UploadReport:
    """One run over the watch folder; never raises for a single file's failure."""
    _check_folders(options)
    store = ObservationStore(options.observations_dir)
    if options.dry_run:
        assessments, _ = observe(options.watch_dir, store.peek(), clock(), options.min_age)
    else:
        with store.locked() as previous:
            assessments, observations = observe(
                options.watch_dir, previous, clock(), options.min_age
            )
            store.save(observations)
    report = UploadReport()
    for readiness in assessments:
        outcome = _handle(client, options, readiness)
        report.outcomes.append(outcome)
        if outcome.status in (UPLOADED, ALREADY_UPLOADED):
            _forget(store, outcome.name)
    return report


def _check_folders(options: UploadOptions) -> None:
    if not options.watch_dir.is_dir():
        raise ConfigurationError(
            f"{options.watch_dir}: watch folder does not exist; pass the folder the partner "
            "uploads to with --watch-dir"
        )
    if options.archive_dir.resolve() == options.watch_dir.resolve():
        raise ConfigurationError(
            f"{options.archive_dir}: the archive folder must differ from the watch folder, "
            "or archived files would be uploaded again; choose another --archive-dir"
        )
    if not options.dry_run:
        options.archive_dir.mkdir(parents=True, exist_ok=True)


def _handle(client: Any, options: UploadOptions, readiness: Readiness) -> FileOutcome:
    name = readiness.path.name
    key = object_key(options.prefix, name)
    if not readiness.ready:
        return FileOutcome(name, WAITING, readiness.reason, key)
    if options.dry_run:
        refused = _failed_check(options, readiness.path, key)
        return refused or FileOutcome(name, WOULD_UPLOAD, readiness.reason, key)
    with _taken(readiness.path) as landing_fd:
        if landing_fd is None:
            return FileOutcome(name, BUSY, "another run is uploading this file", key)
        refused = _failed_check(options, readiness.path, key)
        if refused is not None:
            return refused
        try:
            return _upload(client, options, readiness.path, landing_fd, key)
        except LandingConflictError as error:
            _log_problem("upload_conflict", name, key, error)
            return FileOutcome(name, CONFLICT, str(error), key)
        except (SluicewayError, ClientError, BotoCoreError, OSError) as error:
            _log_problem("upload_failed", name, key, error)
            return FileOutcome(name, FAILED, str(error), key)


def _failed_check(options: UploadOptions, path: Path, key: str) -> FileOutcome | None:
    """Run the ingest's whole-file rules on a complete file; the outcome when it fails them.

    Rejected lines do not stop an upload: the ingest rejects them line by line.
    """
    if options.check_settings is None:
        return None
    from sluiceway.ingest.check import check_landing_file

    result = check_landing_file(str(path), options.check_settings, show=0)
    if result.passed:
        LOGGER.info(
            "check passed: %s (%d of %d records would be rejected)",
            path.name,
            result.rejected,
            result.records,
            extra={
                "fields": {
                    "event": "check_passed",
                    "file": path.name,
                    "records": result.records,
                    "rejected": result.rejected,
                    "rejected_by_reason": result.rejected_by_reason,
                }
            },
        )
        return None
    LOGGER.error(
        "check_failed: %s fails the whole-file rule '%s'; not uploaded, left in %s",
        path.name,
        result.failed_rule,
        path.parent,
        extra={
            "fields": {
                "event": "check_failed",
                "file": path.name,
                "key": key,
                "rule": result.failed_rule,
                "error": result.problem,
            }
        },
    )
    return FileOutcome(path.name, CHECK_FAILED, result.problem or "", key)


@contextmanager
def _taken(path: Path) -> Iterator[int | None]:
    """Yield an open descriptor of the landing file holding its flock, or None when another
    run holds it or already moved the file away."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        # The winner may have archived the file between our open and our lock.
        try:
            still_here = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            still_here = False
        yield fd if still_here else None
    finally:
        os.close(fd)


def _upload(client: Any, options: UploadOptions, path: Path, fd: int, key: str) -> FileOutcome:
    before = os.fstat(fd)
    landing = LandingFile(path, fd, before.st_size, file_sha256(fd, before.st_size))
    result = Transfer(client, options.bucket, key, landing, options.transfer, LOGGER).run()
    after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise UploadFailedError(
            f"{path}: the file changed while it was uploaded to s3://{options.bucket}/{key} "
            "(size or mtime moved), so it was not complete; it was kept. Ask the partner to "
            f"write a {marker_path(path).name} marker when done, or raise --min-age"
        )
    archived = _archive(path, options.archive_dir)
    megabytes = landing.size / 1024 / 1024
    LOGGER.info(
        "%s %s -> s3://%s/%s",
        result.outcome,
        path.name,
        options.bucket,
        key,
        extra={
            "fields": {
                "event": result.outcome,
                "file": path.name,
                "bucket": options.bucket,
                "key": key,
                "version_id": result.version_id,
                "bytes": landing.size,
                "sha256": landing.sha256,
                "parts": result.parts,
                "seconds": round(result.seconds, 3),
                "mib_per_second": (
                    round(megabytes / result.seconds, 1)
                    if result.outcome == UPLOADED and result.seconds
                    else None
                ),
                "archived_to": str(archived),
                "note": result.note,
            }
        },
    )
    detail = f"sha256 {landing.sha256}, archived to {archived}"
    return FileOutcome(path.name, result.outcome, detail, key)


def _archive(path: Path, archive_dir: Path) -> Path:
    """Move the landing file (and its marker) out of the watch folder; never overwrite an
    earlier archived copy of the same name."""
    target = archive_dir / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = archive_dir / f"{path.name}.{stamp}"
    # shutil.move renames on the same file system and copies then deletes across them.
    shutil.move(path, target)
    marker = marker_path(path)
    if marker.exists():
        shutil.move(marker, archive_dir / (target.name + marker.suffix))
    return target


def _forget(store: ObservationStore, name: str) -> None:
    """Drop the observation of an archived file so a new file of that name starts afresh."""
    with store.locked() as observations:
        if observations.pop(name, None) is not None:
            store.save(observations)


def _log_problem(event: str, name: str, key: str, error: BaseException) -> None:
    """The one JSON line per failing file that monitoring and a person read."""
    LOGGER.error(
        "%s: %s",
        event,
        name,
        extra={
            "fields": {
                "event": event,
                "file": name,
                "key": key,
                "error_code": error_code(error),
                "error": str(error),
            }
        },
    )
