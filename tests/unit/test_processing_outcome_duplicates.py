"""Duplicate outcomes counted from 64-bit hashes of the ids, confirmed exactly on collisions."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from sluiceway.processing import reconcile
from sluiceway.processing.reconcile import count_duplicates, id_hashes


def _exact(chunks: list[pa.Array]) -> int:
    values = [value for chunk in chunks for value in chunk.to_pylist()]
    return len(values) - len(set(values))


def _seeded_chunks(seed: int) -> list[pa.Array]:
    rng = random.Random(seed)
    pool = [f"TX{rng.randrange(10**11):011d}" for _ in range(400)] + ["", "T", "TX1", "é-ü"]
    return [
        pa.array([rng.choice(pool) for _ in range(rng.randrange(0, 300))], pa.string())
        for _ in range(5)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_within_and_across_files_are_counted_exactly(seed: int) -> None:
    chunks = _seeded_chunks(seed)
    assert count_duplicates(chunks) == _exact(chunks)


def test_distinct_ids_of_every_length_have_no_duplicates() -> None:
    ids = pa.array(["", "a", "ab", "ba", "TX00000000001", "TX00000000010", "TX0000000001"])
    assert count_duplicates([ids, ids.slice(3, 0)]) == 0
    assert count_duplicates([ids, ids.slice(4, 2)]) == 2
    assert len(np.unique(id_hashes(ids))) == len(ids)


def test_sliced_arrays_hash_their_own_values() -> None:
    ids = pa.array(["x", "TX1", "TX2", "y"])
    assert id_hashes(ids.slice(1, 2)).tolist() == id_hashes(pa.array(["TX1", "TX2"])).tolist()


def test_colliding_hashes_are_confirmed_on_the_ids_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every id hashes alike: the count must come from comparing the strings.
    monkeypatch.setattr(reconcile, "id_hashes", lambda ids: np.zeros(len(ids), np.uint64))
    chunks = _seeded_chunks(7)
    assert count_duplicates(chunks) == _exact(chunks) > 0
    assert count_duplicates([pa.array(["a", "b", "c"])]) == 0


def test_ids_of_one_width_hash_as_they_do_among_other_widths() -> None:
    same_width = pa.array(["TX001", "TX002", "TX001"])
    mixed = pa.array(["TX001", "TX002", "TX001", "T"])
    assert id_hashes(same_width).tolist() == id_hashes(mixed).tolist()[:3]
    assert count_duplicates([same_width]) == 1
