"""Named crash points, so reliability tests can kill a job exactly between two commits.

A failpoint is armed only through `Settings.failpoint` (SLUICEWAY_FAILPOINT); when the job
reaches it, the process kills itself with SIGKILL: no cleanup, no finally blocks, exactly
like a lost container or an OOM kill.
"""

from __future__ import annotations

import os
import signal

from sluiceway.settings import Settings


def reach(settings: Settings, name: str) -> None:
    """Die here, hard, if this failpoint is armed."""
    if settings.failpoint == name:
        os.kill(os.getpid(), signal.SIGKILL)
