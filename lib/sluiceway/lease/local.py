"""The writer lease of a local warehouse: the lock file `WAREHOUSE/NAMESPACE.lease`.

Why a file and not `flock` alone: the file names its holder (job, pid, host, start time), so
a refused writer can say who is writing, and it outlives a killed holder so that a later
writer can judge it dead and take it over. It is created atomically with a hard link (a
reader never sees half a file; two writers never both create it); a lease whose holder died
on this host is taken over under a short `flock`, so two takers cannot both win
(docs/adr/0008-writer-lease.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.lease.holder import PROC, LeaseHolder, process_stat
from sluiceway.logs import get_logger

LOGGER = get_logger(__name__)


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

    def confirm(self, me: LeaseHolder) -> bool:
        # Removed or replaced by a writer that judged this run dead: no longer ours.
        current = self._read()
        return current is not None and current.token == me.token

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
    stat = process_stat(holder.pid)
    if stat is not None:
        state, start = stat
        return state in ("Z", "X") or bool(holder.process_start and start != holder.process_start)
    if (PROC / "self" / "stat").exists():
        return True  # /proc works and has no such pid
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
