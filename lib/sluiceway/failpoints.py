"""Named crash and pause points, so reliability tests can stop a job exactly between two steps.

A failpoint is armed only through `Settings.failpoint` (SLUICEWAY_FAILPOINT):
- `NAME`: when the job reaches it, the process kills itself with SIGKILL: no cleanup, no
  finally blocks, exactly like a lost container or an OOM kill;
- `pause@NAME@MARKER`: the job creates the file MARKER and waits there until the test deletes
  it, so a test can act (start a second run, read the tables) while the job is mid-way.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sluiceway.settings import Settings

PAUSE_PREFIX = "pause@"
# A paused job gives up waiting after this long, so a broken test cannot hang CI.
PAUSE_LIMIT_SECONDS = 600.0


def reach(settings: Settings, name: str) -> None:
    """Die here, hard, or pause here, if this failpoint is armed."""
    if settings.failpoint == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if settings.failpoint.startswith(f"{PAUSE_PREFIX}{name}@"):
        _pause(Path(settings.failpoint.split("@", 2)[2]))


def reach_in_task(armed: str, name: str, attempt: int) -> None:
    """In a Spark task (which has no Settings, only the armed name): kill the Python worker,
    on the task's first attempt only, so that Spark's retry of the task can finish the job."""
    if armed == name and attempt == 0:
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(marker: Path) -> None:
    marker.touch()
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
