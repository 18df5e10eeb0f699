"""When a feed's file is due, and whether it came: `sluiceway status` and the late-file alarm.

Why a module of its own, pure and clock-free: the most common incident of a file pipeline is
the file that never arrives, and nothing else in sluiceway notices it (no file, no run, no
failure). The same decision runs locally (`sluiceway status`, from the ledger) and on AWS (the
late-file Lambda, from the `FilesCompleted` metric), so it takes `now` as an argument and is
tested with a frozen clock.

The model: time is cut into windows (a UTC day, or an hour); in each expected window one file
is due by a time (`due_by_utc`, plus an optional grace). A completed ingest counts for the
window it completes in, whichever day its records are about. A feed is

- `ok` when a file completed in the current window (early files included),
- `waiting` before the due time when none has yet, and the previous expected window got its
  file (or the feed has no history at all: nothing was ever due to it),
- `late` after the due time without a file, and also before the next due time while the
  previous window's file never came: late stays late until a file arrives, it does not clear
  at midnight.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sluiceway.errors import ConfigurationError

OK = "ok"
LATE = "late"
WAITING = "waiting"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Arrival:
    """A feed's `[arrival]` table: one file per window, due `due_by` (+ `grace`) into it.

    `every` is "day", "hour", or the weekdays a file is expected on (e.g. mon..fri): days not
    listed expect no file, and a missing Friday file is still late on Sunday.
    """

    every: str | tuple[str, ...]
    due_by: time
    grace: timedelta = timedelta(0)

    def describe(self) -> str:
        """As `sluiceway contract` shows it: `every day by 06:00 UTC`."""
        every = self.every if isinstance(self.every, str) else ", ".join(self.every)
        minutes = int(self.grace.total_seconds() // 60)
        grace = f" (+{minutes} min grace)" if minutes else ""
        return f"every {every} by {self.due_by:%H:%M} UTC{grace}"

    @property
    def period(self) -> timedelta:
        return HOUR if self.every == "hour" else DAY

    @property
    def offset(self) -> timedelta:
        """From a window's start to the moment its file is late."""
        return timedelta(hours=self.due_by.hour, minutes=self.due_by.minute) + self.grace

    def expects(self, window_start: datetime) -> bool:
        """Whether a file is due in the window starting then."""
        if isinstance(self.every, tuple):
            return WEEKDAYS[window_start.weekday()] in self.every
        return True

    def window_start(self, moment: datetime) -> datetime:
        """Start of the expected window holding `moment`, or of the last one before it."""
        if self.every == "hour":
            start = moment.replace(minute=0, second=0, microsecond=0)
        else:
            start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        while not self.expects(start):  # at most six days back: `every` names a weekday
            start -= self.period
        return start


@dataclass(frozen=True)
class ArrivalStatus:
    """Where a feed stands at `now`: its window, the window's due time, its state, its age."""

    state: str
    window_start: datetime
    due: datetime
    # The due time that was missed (the current window's, or the previous one's), when late.
    late_since: datetime | None
    last_completed: datetime | None
    age: timedelta | None

    @property
    def is_late(self) -> bool:
        return self.state == LATE


def arrival_status(
    arrival: Arrival, last_completed: datetime | None, now: datetime
) -> ArrivalStatus:
    """Decide ok / waiting / late from the feed's last completed ingest (None: never) at `now`."""
    now = as_utc(now)
    last = as_utc(last_completed) if last_completed is not None else None
    start = arrival.window_start(now)
    due = start + arrival.offset
    previous = arrival.window_start(start - arrival.period)
    if last is not None and last >= start:
        state, late_since = OK, None
    elif now >= due:
        state, late_since = LATE, due
    elif last is None or last >= previous:
        state, late_since = WAITING, None
    else:
        state, late_since = LATE, previous + arrival.offset
    age = now - last if last is not None else None
    return ArrivalStatus(state, start, due, late_since, last, age)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (the tables store UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def arrival_from_feed(feed: Mapping[str, Any], source: str) -> Arrival:
    """The `[arrival]` table of a parsed feed file; errors name `source` and the key to fix."""
    table = feed.get("arrival")
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{source}: no [arrival] table; add every and due_by_utc")
    every = _every(table.get("every"), source)
    due_by = _due_by(table.get("due_by_utc"), every, source)
    grace_minutes = table.get("grace_minutes", 0)
    if not isinstance(grace_minutes, int) or isinstance(grace_minutes, bool) or grace_minutes < 0:
        raise ConfigurationError(
            f"{source}: [arrival] grace_minutes must be a whole number >= 0, got {grace_minutes!r}"
        )
    return Arrival(every, due_by, timedelta(minutes=grace_minutes))


def _every(value: Any, source: str) -> str | tuple[str, ...]:
    if value in ("day", "hour"):
        return str(value)
    if isinstance(value, list) and value and all(day in WEEKDAYS for day in value):
        return tuple(day for day in WEEKDAYS if day in value)
    raise ConfigurationError(
        f'{source}: [arrival] every must be "day", "hour" or a list of weekdays '
        f"({', '.join(WEEKDAYS)}), got {value!r}"
    )


def _due_by(value: Any, every: str | tuple[str, ...], source: str) -> time:
    try:
        due_by = time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        due_by = None
    if due_by is None or due_by.second or due_by.microsecond or due_by.tzinfo:
        raise ConfigurationError(
            f'{source}: [arrival] due_by_utc must be "HH:MM" (UTC), got {value!r}'
        )
    if every == "hour" and due_by.hour:
        raise ConfigurationError(
            f'{source}: [arrival] every = "hour" takes due_by_utc as minutes past each hour, '
            f'"00:MM", got {value!r}'
        )
    return due_by


# --- the packaged feed files, read with the standard library only -------------------------------
# The late-file Lambda runs the wheel on a runtime with boto3 and the standard library: it
# cannot load feeds through `feeds` (jsonschema), so it reads the packaged files here.

FEEDS_PACKAGE = "sluiceway"
FEEDS_FOLDER = "data/feeds"


def packaged_feeds() -> dict[str, dict[str, Any]]:
    """The parsed feed files shipped in the package (lib/sluiceway/data/feeds/*.toml), by name.

    Only the `[feed]` name and namespace and the `[arrival]` table are read from them here;
    an operator's `feeds_dir` is not among them (`feeds.feed_names` lists those).
    """
    folder = importlib.resources.files(FEEDS_PACKAGE).joinpath(FEEDS_FOLDER)
    feeds = {}
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith(".toml"):
            parsed = tomllib.loads(item.read_text(encoding="utf-8"))
            feeds[str(parsed.get("feed", {}).get("name", item.name.removesuffix(".toml")))] = parsed
    return feeds


def feed_arrival(name: str) -> tuple[str, Arrival]:
    """A packaged feed's namespace and arrival, by feed name."""
    feeds = packaged_feeds()
    if name not in feeds:
        raise ConfigurationError(f"no feed {name!r}; known feeds: {', '.join(feeds) or 'none'}")
    feed = feeds[name]
    return str(feed["feed"]["namespace"]), arrival_from_feed(feed, f"feed {name}")
