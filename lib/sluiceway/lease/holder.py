"""Who holds a writer lease: the holder record every backend stores and reports.

Why its own module: both backends store and read this record, and the local one also needs
the kernel's view of a pid (`/proc/PID/stat`) to tell a live holder from a dead one or from
another program that got the same pid. Keeping the record and that view here lets
`local.py` and `dynamodb.py` depend on it without depending on each other or on the
package's `writer_lease`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PROC = Path("/proc")


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
        stat = process_stat(os.getpid())
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


def process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a pid from /proc, None where /proc has none."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], fields[19]
