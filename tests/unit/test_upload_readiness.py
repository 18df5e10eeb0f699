"""Which landing files the uploader takes: marker, settled size and mtime, names it ignores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.upload.readiness import (
    Observation,
    ObservationStore,
    assess,
    is_landing_name,
    landing_files,
    observe,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.csv",
        "tx.csv.done",
        "tx.csv.tmp",
        "tx.csv.PART",
        "tx.csv.filepart",
        "tx.csv.partial",
        "tx.csv~",
    ],
)
def test_hidden_marker_and_in_transfer_names_are_never_landing_files(name: str) -> None:
    assert not is_landing_name(name)


@pytest.mark.parametrize("name", ["tx_2026-11-26.csv", "tx.csv.gz", "partner data.csv"])
def test_ordinary_names_are_landing_files(name: str) -> None:
    assert is_landing_name(name)


def test_folders_and_symlinks_in_the_watch_folder_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    (tmp_path / "real.csv.done").touch()

    assert [path.name for path in landing_files(tmp_path)] == ["real.csv"]


def test_missing_watch_folder_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="nowhere"):
        landing_files(tmp_path / "nowhere")


def stat_of(path: Path, content: bytes = b"a,b\n") -> os.stat_result:
    path.write_bytes(content)
    return path.stat()


def test_marker_makes_a_file_ready_on_first_sight(tmp_path: Path) -> None:
    current = stat_of(tmp_path / "tx.csv")
    readiness = assess(tmp_path / "tx.csv", current, None, 100.0, 60.0, has_marker=True)
    assert readiness.ready and "tx.csv.done" in readiness.reason


def test_first_sight_without_marker_waits(tmp_path: Path) -> None:
    current = stat_of(tmp_path / "tx.csv")
    readiness = assess(tmp_path / "tx.csv", current, None, 100.0, 60.0, has_marker=False)
    assert not readiness.ready and "first seen" in readiness.reason


def test_unchanged_file_is_ready_only_after_min_age(tmp_path: Path) -> None:
    current = stat_of(tmp_path / "tx.csv")
    seen = Observation(current.st_size, current.st_mtime_ns, seen_at=100.0)

    too_early = assess(tmp_path / "tx.csv", current, seen, 159.0, 60.0, has_marker=False)
    settled = assess(tmp_path / "tx.csv", current, seen, 160.0, 60.0, has_marker=False)

    assert not too_early.ready and "waiting for 60s" in too_early.reason
    assert settled.ready


@pytest.mark.parametrize("change", ["size", "mtime"])
def test_a_change_in_size_or_mtime_restarts_the_wait(tmp_path: Path, change: str) -> None:
    current = stat_of(tmp_path / "tx.csv")
    size = current.st_size + (1 if change == "size" else 0)
    mtime = current.st_mtime_ns + (1 if change == "mtime" else 0)
    seen = Observation(size, mtime, seen_at=0.0)

    readiness = assess(tmp_path / "tx.csv", current, seen, 1000.0, 60.0, has_marker=False)

    assert not readiness.ready and "still changing" in readiness.reason


def test_observations_keep_first_sight_of_unchanged_files_and_forget_vanished_ones(
    tmp_path: Path,
) -> None:
    stat_of(tmp_path / "steady.csv")
    stat_of(tmp_path / "growing.csv")
    _, first = observe(tmp_path, {"gone.csv": Observation(1, 1, 0.0)}, now=10.0, min_age=5.0)
    with (tmp_path / "growing.csv").open("ab") as growing:
        growing.write(b"more\n")

    assessments, second = observe(tmp_path, first, now=20.0, min_age=5.0)

    assert sorted(first) == ["growing.csv", "steady.csv"]
    assert second["steady.csv"].seen_at == 10.0
    assert second["growing.csv"].seen_at == 20.0
    assert {a.path.name: a.ready for a in assessments} == {
        "growing.csv": False,
        "steady.csv": True,
    }


def test_store_round_trips_observations_and_survives_a_damaged_file(tmp_path: Path) -> None:
    store = ObservationStore(tmp_path / "state")
    with store.locked() as observations:
        assert observations == {}
        store.save({"tx.csv": Observation(10, 20, 30.5)})
    with store.locked() as observations:
        assert observations == {"tx.csv": Observation(10, 20, 30.5)}
    store.path.write_text("{not json")
    with store.locked() as observations:
        assert observations == {}
