"""One writer per warehouse namespace at a time: the writer lease.

Why: Iceberg commits are atomic per table, not per run. Two runs writing one namespace at
once (a re-run during an ingest, a Step Functions redrive, `maintain` during processing) can
delete each other's "partial" rows, double records or leave a ledger saying `completed` over
nothing. Ingest, process and maintain therefore take this lease before they read what they
will write; a second writer waits up to `lease_wait_seconds`, then exits busy
(`WriterBusyError`, exit code 4) naming the holder, and never touches the tables.

Two backends, chosen by the warehouse (docs/adr/0008-writer-lease.md):
- a local warehouse: the file `WAREHOUSE/NAMESPACE.lease` (holder's job, pid, host, start
  time), created atomically with a hard link; a lease whose holder died on this host is taken
  over under a short `flock`, so two takers cannot both win;
- an `s3://` warehouse (Glue, EMR Serverless, Batch): an item in the DynamoDB table
  `lease_table` (partition key `lease_name`, TTL attribute `expires_at`), taken with a
  conditional PutItem, kept alive by a heartbeat thread, released with a conditional delete;
  a holder that died stops renewing and its lease expires after `lease_expiry_seconds`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sluiceway.errors import ConfigurationError, ExitCode, SluicewayError
from sluiceway.locations import is_s3
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 10.0
_PROC = Path("/proc")

Progress = Callable[[str], None]


class WriterBusyError(SluicewayError):
    """Another run holds the namespace's writer lease; this run changed nothing."""

    exit_code: int = ExitCode.BUSY


class LeaseLostError(SluicewayError):
    """The lease expired during the run (heartbeats failed) and another writer may have run."""

    exit_code: int = ExitCode.BUSY


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease; `token` tells this run's lease from any later one."""

    job: str
    pid: int
    host: str
    started_at: str
    token: str
    # The kernel's start time of the pid: a pid reused by another program is not the holder.
    process_start: str = ""

    @classmethod
    def mine(cls, job: str) -> LeaseHolder:
        """The holder record of this process for `job`."""
        stat = _process_stat(os.getpid())
        return cls(
            job=job,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            token=uuid.uuid4().hex,
            process_start=stat[1] if stat else "",
        )

    def describe(self) -> str:
        """`process (pid 4242 on host-a, since 2026-11-30T03:20:11Z)`."""
        if not self.pid:
            return f"{self.job} (remove the lease if no sluiceway job is running)"
        return f"{self.job} (pid {self.pid} on {self.host}, since {self.started_at})"


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


class FileLease:
    """The lease of a local warehouse: one JSON file, present while a writer runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def try_acquire(self, me: LeaseHolder) -> LeaseHolder | None:
        holder = None
        # Each turn either takes the lease, meets a live holder, or clears a dead one.
        for _turn in range(10):
            if self._create(me):
                return None
            holder = self._read()
            if holder is None:
                continue  # released between our two looks
            if not _is_dead(holder):
                return holder
            self._take_over(holder)
        return holder or LeaseHolder("another writer", 0, "", "", "")

    def kept(self, me: LeaseHolder) -> AbstractContextManager[Callable[[], bool]]:
        # A live pid is the heartbeat: the lease cannot be lost while this process runs.
        return nullcontext(lambda: False)

    def release(self, me: LeaseHolder) -> None:
        current = self._read()
        if current is not None and current.token == me.token:
            self.path.unlink(missing_ok=True)
        else:
            LOGGER.warning("writer lease %s was no longer ours; left it in place", self.where)

    def _create(self, me: LeaseHolder) -> bool:
        """Publish a complete lease file at once: write aside, then hard-link (fails if taken)."""
        draft = self.path.with_name(f".{self.path.name}.{me.token}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            draft.write_text(json.dumps(asdict(me)))
            os.link(draft, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as error:
            raise ConfigurationError(
                f"cannot create the writer lease {self.path}: {error.strerror}; the warehouse "
                "must be a folder this user can write"
            ) from error
        finally:
            draft.unlink(missing_ok=True)

    def _read(self) -> LeaseHolder | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return LeaseHolder(**json.loads(text))
        except (ValueError, TypeError):
            return LeaseHolder(f"an unreadable lease file {self.path}", 0, "", "", "")

    def _take_over(self, dead: LeaseHolder) -> None:
        """Remove a dead holder's lease, once: the check and the removal happen under a flock.

        Without it two takers could both judge the same dead lease, one remove it and create
        its own, and the other then remove that live lease.
        """
        guard = self.path.with_name(f"{self.path.name}.takeover")
        with guard.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = self._read()
            if current is not None and current.token == dead.token:
                self.path.unlink()
                LOGGER.warning(
                    "took over the writer lease %s from %s, which is no longer running",
                    self.where,
                    dead.describe(),
                )


def _is_dead(holder: LeaseHolder) -> bool:
    """True only when the holder ran on this host and its process is gone (or a zombie).

    A holder on another host (a shared folder) cannot be checked and counts as alive.
    """
    if not holder.pid or holder.host != socket.gethostname():
        return False
    stat = _process_stat(holder.pid)
    if stat is not None:
        state, start = stat
        return state in ("Z", "X") or bool(holder.process_start and start != holder.process_start)
    if (_PROC / "self" / "stat").exists():
        return True  # /proc works and has no such pid
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a pid from /proc, None where /proc has none."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], fields[19]


class DynamoDbLease:
    """The lease of an s3:// warehouse: one DynamoDB item per namespace, with an expiry."""

    def __init__(self, client: Any, table: str, name: str, expiry_seconds: int) -> None:
        self.client = client
        self.table = table
        self.name = name
        self.expiry_seconds = max(3, expiry_seconds)
        self.where = f"DynamoDB table {table}, lease_name {name}"

    def try_acquire(self, me: LeaseHolder) -> LeaseHolder | None:
        for _turn in range(3):  # an expired or released item may vanish between the calls
            now = int(time.time())
            try:
                self._call(
                    "put_item",
                    Item=self._item(me, now + self.expiry_seconds),
                    ConditionExpression="attribute_not_exists(lease_name) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                return None
            except _ConditionFailed:
                pass
            item = self._call("get_item", Key=self._key(), ConsistentRead=True).get("Item")
            if item:
                return _holder_from_item(item)
        return LeaseHolder("another writer", 0, "", "", "")

    @contextmanager
    def kept(self, me: LeaseHolder) -> Iterator[Callable[[], bool]]:
        heartbeat = _Heartbeat(self, me, interval=self.expiry_seconds / 4)
        heartbeat.start()
        try:
            yield heartbeat.lost.is_set
        finally:
            heartbeat.stop()

    def renew(self, me: LeaseHolder) -> bool:
        """Push the expiry forward; False when the lease is no longer ours."""
        try:
            self._call(
                "update_item",
                Key=self._key(),
                UpdateExpression="SET expires_at = :expires",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":expires": {"N": str(int(time.time()) + self.expiry_seconds)},
                    ":token": {"S": me.token},
                },
            )
        except _ConditionFailed:
            return False
        return True

    def release(self, me: LeaseHolder) -> None:
        try:
            self._call(
                "delete_item",
                Key=self._key(),
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": {"S": me.token}},
            )
        except _ConditionFailed:
            LOGGER.warning("writer lease %s was no longer ours; left it in place", self.where)

    def _key(self) -> dict[str, dict[str, str]]:
        return {"lease_name": {"S": self.name}}

    def _item(self, me: LeaseHolder, expires_at: int) -> dict[str, dict[str, str]]:
        item = {key: {"S": str(value)} for key, value in asdict(me).items()}
        item["pid"] = {"N": str(me.pid)}
        return {**self._key(), **item, "expires_at": {"N": str(expires_at)}}

    def _call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            answer: dict[str, Any] = getattr(self.client, operation)(
                TableName=self.table, **parameters
            )
            return answer
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from error
            if code == "ResourceNotFoundException":
                raise ConfigurationError(
                    f"the writer-lease table {self.table} does not exist; deploy the stack's "
                    "lease table or fix SLUICEWAY_LEASE_TABLE"
                ) from error
            raise


class _ConditionFailed(Exception):
    """A conditional DynamoDB write found another holder's lease."""


def _holder_from_item(item: dict[str, dict[str, str]]) -> LeaseHolder:
    def text(name: str) -> str:
        value = item.get(name, {})
        return value.get("S") or value.get("N") or ""

    return LeaseHolder(
        job=text("job"),
        pid=int(text("pid") or 0),
        host=text("host"),
        started_at=text("started_at"),
        token=text("token"),
        process_start=text("process_start"),
    )


class _Heartbeat(threading.Thread):
    """Renews a DynamoDB lease every quarter of its expiry; records when it was lost."""

    def __init__(self, lease: DynamoDbLease, me: LeaseHolder, interval: float) -> None:
        super().__init__(name="sluiceway-lease-heartbeat", daemon=True)
        self.lease = lease
        self.me = me
        self.interval = interval
        self.lost = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                if not self.lease.renew(self.me):
                    self.lost.set()
                    LOGGER.error("writer lease %s was taken by another writer", self.lease.where)
                    return
            except Exception as error:  # a network hiccup: the next beat tries again
                LOGGER.warning("could not renew writer lease %s: %s", self.lease.where, error)

    def stop(self) -> None:
        self._stopping.set()
        self.join()
