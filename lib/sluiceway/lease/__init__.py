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

A lease is only as good as its fence: `writer_lease` yields a `Fence`, and every commit of
the run calls `Fence.check` right before it (`sluiceway.commits`), which asks the backend
whether the lease is still this run's (the lease file's token; a conditional DynamoDB
update). A writer paused past its expiry, or whose renewals kept failing, stops there with
`LeaseLostError` (exit code 6) and changes nothing more; Iceberg's own check that `main` is
where this run left it (`sluiceway.commits`) catches the rest.
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
    """This run no longer holds the lease, or another writer committed in its place: it
    stopped before its next commit. Its own exit code, never BUSY: a retry would find the
    other writer's result and end green, hiding that two writers ran."""

    exit_code: int = ExitCode.LEASE_LOST


class Lease(Protocol):
    """A lease backend: one atomic take, a release that only removes the caller's lease."""

    where: str

    def try_acquire(self, me: LeaseHolder) -> LeaseHolder | None:
        """None when `me` now holds the lease, else the current holder."""

    def kept(self, me: LeaseHolder) -> AbstractContextManager[Callable[[], bool]]:
        """Keep the lease alive while the run writes; yields a 'was it lost?' check."""

    def confirm(self, me: LeaseHolder) -> bool:
        """Right before a commit: is the lease still `me`'s? (Renews it where it expires.)"""

    def release(self, me: LeaseHolder) -> None:
        """Give the lease up if `me` still holds it."""


class Fence:
    """The run's proof that it still holds the lease, checked right before each commit."""

    def __init__(
        self, lease: Lease, holder: LeaseHolder, namespace: str, lost: Callable[[], bool]
    ) -> None:
        self.lease = lease
        self.holder = holder
        self.namespace = namespace
        self._lost = lost

    @property
    def token(self) -> str:
        """The lease's token: written into every snapshot this run commits."""
        return self.holder.token

    def check(self, commit: str) -> None:
        """Raise `LeaseLostError` unless the lease is still this run's; `commit` says what
        would have been committed, for the message."""
        if self._lost() or not self.lease.confirm(self.holder):
            raise self.lost_error(f"{commit} was not committed", "the writer lease")

    def lost_error(self, what: str, why: str) -> LeaseLostError:
        """The error of a fenced writer: what it did not do and who fenced it."""
        error = LeaseLostError(
            f"{self.holder.job}: {what}: {why} of namespace {self.namespace} "
            f"({self.lease.where}) is no longer this run's (it was paused or cut off past the "
            "lease's expiry and another writer may have taken over); this run stopped and "
            "changed nothing more. Check the other run's result before running this one again"
        )
        log_event(LOGGER, "writer fenced", job=self.holder.job, what=what, fenced_by=why)
        return error

    def released(self) -> bool:
        """True once the lease was lost, for the end of the run."""
        return self._lost()


@contextmanager
def writer_lease(settings: Settings, job: str, progress: Progress | None = None) -> Iterator[Fence]:
    """Hold the writer lease of `settings.namespace` for the body of the `with`.

    Waits up to `settings.lease_wait_seconds` for a running writer, reporting progress every
    10 s, then raises `WriterBusyError` (exit code 4) naming the holder. Yields the `Fence`
    every commit of the body checks.
    """
    lease = lease_for(settings)
    me = LeaseHolder.mine(job)
    waited = _acquire(lease, me, settings, progress or _log_progress)
    log_event(LOGGER, "writer lease taken", job=job, lease=lease.where, waited_seconds=waited)
    try:
        with lease.kept(me) as lost:
            fence = Fence(lease, me, settings.namespace, lost)
            yield fence
        if fence.released():
            raise fence.lost_error("the run finished", "the writer lease")
    finally:
        lease.release(me)
        log_event(LOGGER, "writer lease released", job=job, lease=lease.where)


def refuse_if_busy(settings: Settings, job: str) -> None:
    """Before a writer that would not wait starts Spark: when another run holds the lease,
    the `WriterBusyError` it would meet after the JVM's start-up (seconds), at once.

    Only a probe, taken and given back at once; `writer_lease` takes the lease for real, and
    a run that wins it in between still makes that one wait or exit busy.
    """
    if settings.lease_wait_seconds > 0:
        return
    lease = lease_for(settings)
    me = LeaseHolder.mine(job)
    holder = lease.try_acquire(me)
    if holder is None:
        lease.release(me)
        return
    raise _busy(settings, lease, me, holder, 0.0)


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
    from botocore.config import Config

    # Short timeouts and few retries: one hung call must not outlive the lease's expiry.
    client = boto3.client(
        "dynamodb",
        region_name=settings.aws_region,
        config=Config(
            connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )
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
            raise _busy(settings, lease, me, holder, waited)
        if time.monotonic() >= next_report:
            progress(
                f"waiting up to {left:.0f} s more for the writer lease of namespace "
                f"{settings.namespace}, held by {holder.describe()}"
            )
            next_report += PROGRESS_EVERY_SECONDS
        time.sleep(min(POLL_SECONDS, left))
    return round(time.monotonic() - started, 1)


def _busy(
    settings: Settings, lease: Lease, me: LeaseHolder, holder: LeaseHolder, waited: float
) -> WriterBusyError:
    after = f" (waited {waited:.0f} s)" if waited >= 1 else ""
    return WriterBusyError(
        f"namespace {settings.namespace} is being written by {holder.describe()}, "
        f"lease {lease.where}: {me.job} skipped{after}, nothing was changed; run it "
        "again when that writer has finished"
    )


def _log_progress(message: str) -> None:
    log_event(LOGGER, message)


__all__ = [
    "Fence",
    "Lease",
    "LeaseHolder",
    "LeaseLostError",
    "WriterBusyError",
    "lease_file",
    "lease_for",
    "writer_lease",
]
