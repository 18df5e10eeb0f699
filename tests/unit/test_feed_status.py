"""`sluiceway status` without Spark: its view, its exit codes and a warehouse with no ingest yet.

The ledger of a real ingest is read in tests/integration/test_feed_status_ledger.py; here the
last completed file is handed in (`read_last`), which is what the ledger query returns.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from sluiceway.arrival import LATE, OK, WAITING, Arrival, packaged_feeds
from sluiceway.cli import main
from sluiceway.errors import ExitCode
from sluiceway.feed_status import feed_statuses, status_table
from sluiceway.settings import Settings, load_settings

pytestmark = pytest.mark.unit

FEEDS = {
    "cards": {"feed": {"namespace": "cards"}, "arrival": {"every": "day", "due_by_utc": "06:00"}},
    "fx": {"feed": {"namespace": "fx"}, "arrival": {"every": "hour", "due_by_utc": "00:10"}},
}
NOW = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)


def settings_for(namespace: str) -> Settings:
    return load_settings(arguments={"namespace": namespace, "warehouse": "/nowhere"})


def test_each_feed_is_decided_from_the_last_file_of_its_own_namespace() -> None:
    completed = {
        "cards": ("s3://landing/cards/2026-12-06.csv", datetime(2026, 12, 6, 5, 0, tzinfo=UTC)),
        "fx": ("s3://landing/fx/0605.csv", datetime(2026, 12, 7, 6, 5, tzinfo=UTC)),
    }
    statuses = feed_statuses(FEEDS, settings_for, NOW, lambda s: completed[s.namespace])
    by_feed = {item.feed: item for item in statuses}
    assert by_feed["cards"].status.state == LATE
    assert by_feed["cards"].last_file == "s3://landing/cards/2026-12-06.csv"
    assert by_feed["cards"].arrival == Arrival("day", time(6, 0))
    assert by_feed["fx"].status.state == OK

    table = status_table(statuses).splitlines()
    assert table[0].split() == ["feed", "state", "last", "completed", "file", "completed", "(UTC)",
                                "age", "due", "(UTC)"]  # fmt: skip
    assert table[1].startswith("cards ") and "late since 2026-12-07 06:00" in table[1]
    assert "1d 1h" in table[1] and "2026-12-06 05:00" in table[1]
    assert table[2].startswith("fx ") and " ok " in table[2] and "0h 25m" in table[2]

    document = by_feed["cards"].to_json()
    assert document["state"] == "late" and document["age_seconds"] == 25 * 3600 + 30 * 60
    assert document["completed_at"] == "2026-12-06T05:00:00+00:00"
    assert document["late_since"] == document["due"] == "2026-12-07T06:00:00+00:00"


def test_a_feed_without_any_completed_file_says_so() -> None:
    [item] = feed_statuses({"cards": FEEDS["cards"]}, settings_for, NOW, lambda _s: None)
    assert (item.last_file, item.status.state, item.status.age) == (None, LATE, None)
    assert "(none yet)" in status_table([item])
    assert item.to_json()["completed_at"] is None


def test_status_on_a_warehouse_without_ingests_waits_then_exits_7_when_late(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = str(tmp_path / "warehouse")
    code = main(["status", "--warehouse", warehouse, "--now", "2026-12-07T05:59:00Z"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[1].split()[:2] == ["transactions", WAITING]

    code = main(["status", "--warehouse", warehouse, "--now", "2026-12-07T06:00", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.FEED_LATE == 7
    assert document["now"] == "2026-12-07T06:00:00+00:00"
    assert [feed["feed"] for feed in document["feeds"]] == sorted(packaged_feeds())
    transactions = document["feeds"][0]
    assert (transactions["state"], transactions["namespace"]) == (LATE, "sluiceway")
    assert transactions["late_since"] == "2026-12-07T06:00:00+00:00"


def test_status_takes_the_namespace_option_for_every_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["status", "--warehouse", str(tmp_path), "--namespace", "sluiceway_dev", "--json"]
    main([*arguments, "--now", "2026-12-07T01:00:00+01:00"])
    [transactions] = json.loads(capsys.readouterr().out)["feeds"]
    assert transactions["namespace"] == "sluiceway_dev"
    assert transactions["window_start"] == "2026-12-07T00:00:00+00:00"  # 01:00+01:00 is 00:00Z


def test_a_wrong_now_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status", "--now", "tomorrow"])
    assert exited.value.code == 2
    assert "not an ISO 8601 time: 'tomorrow'" in capsys.readouterr().err


def test_the_help_says_when_it_exits_7() -> None:
    from sluiceway.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = " ".join(commands["status"].format_help().split())
    assert "Exit 0 when no feed is late, 7 (FEED_LATE) when one is" in text
