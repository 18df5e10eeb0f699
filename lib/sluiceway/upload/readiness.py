"""Which files in the watch folder are complete: partner marker, or size and mtime settled.

A partner writes a ~1 GB file over minutes; uploading it while it grows ships half a file.
The mtime alone is not enough: `scp -p` and `rsync -t` set the source's old mtime on a file
that is still being written, so a file is taken only when two observations at least
`min_age` seconds apart saw the same size and mtime (or when `NAME.done` exists).
Observations live in a small JSON file because each cron run is a fresh process.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from sluiceway.errors import ConfigurationError

MARKER_SUFFIX = ".done"
# Names that partners' tools use while a transfer is still running (WinSCP, curl, browsers,
# editors); such a file is renamed to its final name when complete.
TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".filepart", ".crdownload", ".swp")
OBSERVATIONS_FILE = "observations.json"


@dataclass(frozen=True)
class Observation:
    """What one run saw of a landing file, and when."""

    size: int
    mtime_ns: int
    seen_at: float


@dataclass(frozen=True)
class Readiness:
    """Whether a landing file may be taken now, and the reason a person reads in the log."""

    path: Path
    ready: bool
    reason: str


def is_landing_name(name: str) -> bool:
    """False for hidden files, markers and names of transfers still in progress."""
    return not (
        name.startswith(".")
        or name.endswith("~")
        or name.endswith(MARKER_SUFFIX)
        or name.lower().endswith(TEMPORARY_SUFFIXES)
    )


def marker_path(path: Path) -> Path:
    """The partner's "this file is complete" marker for a landing file."""
    return path.with_name(path.name + MARKER_SUFFIX)


def landing_files(watch_dir: Path) -> list[Path]:
    """Regular files directly in the watch folder that could be landing files, by name."""
    if not watch_dir.is_dir():
        raise ConfigurationError(
            f"{watch_dir}: watch folder does not exist or is not a folder; "
            "create it or pass the folder the partner uploads to with --watch-dir"
        )
    with os.scandir(watch_dir) as entries:
        return sorted(
            Path(entry.path)
            for entry in entries
            if entry.is_file(follow_symlinks=False) and is_landing_name(entry.name)
        )


def assess(
    path: Path,
    current: os.stat_result,
    previous: Observation | None,
    now: float,
    min_age: float,
    has_marker: bool,
) -> Readiness:
    """Ready when the marker exists or an unchanged observation is at least min_age old."""
    if has_marker:
        return Readiness(path, True, f"marker {marker_path(path).name} present")
    if previous is None:
        return Readiness(path, False, "first seen; waiting until size and mtime stay unchanged")
    if (previous.size, previous.mtime_ns) != (current.st_size, current.st_mtime_ns):
        return Readiness(path, False, "still changing (size or mtime differ from the last run)")
    waited = now - previous.seen_at
    if waited < min_age:
        return Readiness(path, False, f"unchanged for {waited:.1f}s, waiting for {min_age:g}s")
    return Readiness(path, True, f"size and mtime unchanged for {waited:.1f}s")


def observe(
    watch_dir: Path,
    observations: Mapping[str, Observation],
    now: float,
    min_age: float,
) -> tuple[list[Readiness], dict[str, Observation]]:
    """Assess every landing file; returns the assessments and the observations to keep."""
    assessments: list[Readiness] = []
    kept: dict[str, Observation] = {}
    for path in landing_files(watch_dir):
        try:
            current = path.stat()
        except FileNotFoundError:
            continue
        previous = observations.get(path.name)
        assessments.append(
            assess(path, current, previous, now, min_age, marker_path(path).exists())
        )
        if previous is None or (previous.size, previous.mtime_ns) != (
            current.st_size,
            current.st_mtime_ns,
        ):
            previous = Observation(current.st_size, current.st_mtime_ns, now)
        kept[path.name] = previous
    return assessments, kept


class ObservationStore:
    """The observations of earlier runs, read and replaced under a lock (runs may overlap)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / OBSERVATIONS_FILE
        self.lock_path = state_dir / (OBSERVATIONS_FILE + ".lock")

    @contextmanager
    def locked(self) -> Iterator[dict[str, Observation]]:
        """Hold the store's lock while the caller reads and then `save`s the observations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save(self, observations: Mapping[str, Observation]) -> None:
        """Replace the file atomically so a killed run never leaves half a JSON document."""
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({name: asdict(obs) for name, obs in sorted(observations.items())})
        )
        os.replace(temporary, self.path)

    def peek(self) -> dict[str, Observation]:
        """The observations without locking or creating anything (for dry runs)."""
        return self._read()

    def _read(self) -> dict[str, Observation]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError:
            # Losing observations only delays uploads by one run; never block on it.
            return {}
        return {name: Observation(**fields) for name, fields in raw.items()}
