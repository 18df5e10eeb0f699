"""`sluiceway status`: each feed's last completed file from the ledger, and whether it is late.

Why through the analyst query path (DuckDB locally, Athena for an s3:// warehouse) and not
Spark: a cron job or a person asking "did today's file come?" should have the answer in a
second, with no JVM. The decision itself is `arrival.arrival_status`, the same the late-file
Lambda makes on AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sluiceway.arrival import Arrival, ArrivalStatus, arrival_from_feed, arrival_status, as_utc
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED
from sluiceway.tables import INGEST_LEDGER

# The newest completed ingest of a namespace (Athena's dialect, as every analyst query).
LAST_COMPLETED_SQL = (
    f"SELECT source_file, finished_at FROM {INGEST_LEDGER} WHERE status = '{COMPLETED}' "
    "ORDER BY finished_at DESC LIMIT 1"
)


@dataclass(frozen=True)
class FeedStatus:
    """One line of `sluiceway status`."""

    feed: str
    namespace: str
    arrival: Arrival
    last_file: str | None
    status: ArrivalStatus

    def to_json(self) -> dict[str, Any]:
        status = self.status
        return {
            "feed": self.feed,
            "namespace": self.namespace,
            "state": status.state,
            "last_file": self.last_file,
            "completed_at": _iso(status.last_completed),
            "age_seconds": int(status.age.total_seconds()) if status.age is not None else None,
            "window_start": _iso(status.window_start),
            "due": _iso(status.due),
            "late_since": _iso(status.late_since),
        }


def last_completed_file(settings: Settings) -> tuple[str, datetime] | None:
    """The source file and finish time of the namespace's newest completed ingest, if any."""
    from sluiceway.query import existing_tables, query

    if INGEST_LEDGER not in existing_tables(settings):
        return None
    frame = query(settings, LAST_COMPLETED_SQL)
    if frame.empty:
        return None
    import pandas as pd

    row = frame.iloc[0]
    return str(row["source_file"]), as_utc(pd.Timestamp(row["finished_at"]).to_pydatetime())


def feed_statuses(
    feeds: Mapping[str, Mapping[str, Any]],
    settings_for: Callable[[str], Settings],
    now: datetime,
    read_last: Callable[[Settings], tuple[str, datetime] | None] = last_completed_file,
) -> list[FeedStatus]:
    """The status of each parsed feed file at `now`; `settings_for(namespace)` says where its
    tables are."""
    statuses = []
    for name, feed in sorted(feeds.items()):
        arrival = arrival_from_feed(feed, f"feed {name}")
        settings = settings_for(str(feed["feed"]["namespace"]))
        last = read_last(settings)
        last_file, completed = last if last is not None else (None, None)
        status = arrival_status(arrival, completed, now)
        statuses.append(FeedStatus(name, settings.namespace, arrival, last_file, status))
    return statuses


def status_table(statuses: list[FeedStatus]) -> str:
    """The human view: one line per feed, late ones saying since when."""
    header = ("feed", "state", "last completed file", "completed (UTC)", "age", "due (UTC)")
    rows = [header]
    for item in statuses:
        status = item.status
        state = status.state
        if status.late_since is not None:
            state = f"late since {_minute(status.late_since)}"
        rows.append(
            (
                item.feed,
                state,
                item.last_file or "(none yet)",
                _minute(status.last_completed) if status.last_completed else "-",
                _age(status.age),
                _minute(status.due),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    minutes = int(age.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
