"""One writer per warehouse namespace at a time: the writer lease.

Why: Iceberg commits are atomic per table, not per run. Two runs writing one namespace at
once (a re-run during an ingest, a Step Functions redrive, `maintain` during processing) can
delete each other's "partial" rows, double records or leave a ledger saying `completed` over
nothing. Ingest, process and maintain therefore take this lease before they read what they
will write; a second writer waits up to `lease_wait_seconds`, then exits busy
(`WriterBusyError`, exit code 4) naming the holder, and never touches the tables.

This module is what callers use (`writer_lease`, the errors, `lease_for`, `lease_file`) and
the interface every backend meets (`Lease`). Two backends, chosen by the warehouse
(docs/adr/0008-writer-lease.md):
- `local.py`, a local warehouse: the file `WAREHOUSE/NAMESPACE.lease`, created atomically
  with a hard link, taken over under a short `flock` when its holder died on this host;
- `dynamodb.py`, an `s3://` warehouse: an item in the DynamoDB table `lease_table`, taken
  with a conditional PutItem, kept alive by a heartbeat thread, expiring after
  `lease_expiry_seconds` when its holder died.
`holder.py` is the holder record both store (job, pid, host, start time, token).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sluiceway.errors import ConfigurationError, ExitCode, SluicewayError
from sluiceway.lease.dynamodb import DynamoDbLease
from sluiceway.lease.holder import LeaseHolder
from sluiceway.lease.local import FileLease
from sluiceway.locations import is_s3
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 10.0

Progress = Callable[[str], None]


class WriterBusyError(SluicewayError):
    """Another run holds the namespace's writer lease; this run changed nothing."""

    exit_code: int = ExitCode.BUSY


class LeaseLostError(SluicewayError):
    """The lease expired during the run (heartbeats failed) and another writer may have run."""

    exit_code: int = ExitCode.BUSY


class Lease(Protocol):
    """A lease backend: one atomic take, a release that only removes the caller's lease."""

    where: str

    def try_acquire(self, me: LeaseHolder) -> LeaseHolder | None:
        """None when `me` now holds the lease, else the current holder."""

    def kept(self, me: LeaseHolder) -> AbstractContextManager[Callable[[], bool]]:
        """Keep the lease alive while the run writes; yields a 'was it lost?' check."""

    def release(self, me: LeaseHolder) -> None:
        """Give the lease up if `me` still holds it."""


@contextmanager
def writer_lease(
    settings: Settings, job: str, progress: Progress | None = None
) -> Iterator[LeaseHolder]:
    """Hold the writer lease of `settings.namespace` for the body of the `with`.

    Waits up to `settings.lease_wait_seconds` for a running writer, reporting progress every
    10 s, then raises `WriterBusyError` (exit code 4) naming the holder.
    """
    lease = lease_for(settings)
    me = LeaseHolder.mine(job)
    waited = _acquire(lease, me, settings, progress or _log_progress)
    log_event(LOGGER, "writer lease taken", job=job, lease=lease.where, waited_seconds=waited)
    try:
        with lease.kept(me) as lost:
            yield me
        if lost():
            raise LeaseLostError(
                f"{job}: the writer lease of namespace {settings.namespace} ({lease.where}) "
                "expired during the run because it could not be renewed; another writer may "
                "have run at the same time, so check the run's ingest before relying on it"
            )
    finally:
        lease.release(me)
        log_event(LOGGER, "writer lease released", job=job, lease=lease.where)


def lease_for(settings: Settings) -> Lease:
    """The lease backend of the warehouse: DynamoDB for s3:// warehouses, else a local file."""
    if not is_s3(settings.warehouse):
        return FileLease(lease_file(settings))
    if not settings.lease_table:
        raise ConfigurationError(
            f"warehouse {settings.warehouse} needs a writer-lease table: set "
            "SLUICEWAY_LEASE_TABLE to the DynamoDB table of the stack (partition key lease_name)"
        )
    import boto3

    client = boto3.client("dynamodb", region_name=settings.aws_region)
    return DynamoDbLease(
        client, settings.lease_table, settings.namespace, settings.lease_expiry_seconds
    )


def lease_file(settings: Settings) -> Path:
    """The lease file of a local warehouse's namespace (beside, not inside, its tables)."""
    return Path(settings.warehouse).resolve() / f"{settings.namespace}.lease"


def _acquire(lease: Lease, me: LeaseHolder, settings: Settings, progress: Progress) -> float:
    started = time.monotonic()
    next_report = started
    while (holder := lease.try_acquire(me)) is not None:
        waited = time.monotonic() - started
        left = settings.lease_wait_seconds - waited
        if left <= 0:
            after = f" (waited {waited:.0f} s)" if waited >= 1 else ""
            raise WriterBusyError(
                f"namespace {settings.namespace} is being written by {holder.describe()}, "
                f"lease {lease.where}: {me.job} skipped{after}, nothing was changed; run it "
                "again when that writer has finished"
            )
        if time.monotonic() >= next_report:
            progress(
                f"waiting up to {left:.0f} s more for the writer lease of namespace "
                f"{settings.namespace}, held by {holder.describe()}"
            )
            next_report += PROGRESS_EVERY_SECONDS
        time.sleep(min(POLL_SECONDS, left))
    return round(time.monotonic() - started, 1)


def _log_progress(message: str) -> None:
    log_event(LOGGER, message)


__all__ = [
    "Lease",
    "LeaseHolder",
    "LeaseLostError",
    "WriterBusyError",
    "lease_file",
    "lease_for",
    "writer_lease",
]
