"""Duplicate outcomes counted from 64-bit hashes of the ids, confirmed exactly on collisions,
with the ids' text read again only when a hash repeats."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from sluiceway.ingest.duplicates import id_hashes
from sluiceway.processing.reconcile import count_duplicates


def _exact(chunks: list[pa.Array]) -> int:
    values = [value for chunk in chunks for value in chunk.to_pylist()]
    return len(values) - len(set(values))


def _count(chunks: list[pa.Array], hash_ids=id_hashes) -> int:
    """count_duplicates as reconcile calls it: hashes first, the ids again on demand."""
    return count_duplicates([hash_ids(chunk) for chunk in chunks], lambda: chunks, hash_ids)


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
    assert _count(chunks) == _exact(chunks)


def test_distinct_ids_of_every_length_have_no_duplicates() -> None:
    ids = pa.array(["", "a", "ab", "ba", "TX00000000001", "TX00000000010", "TX0000000001"])
    assert _count([ids, ids.slice(3, 0)]) == 0
    assert _count([ids, ids.slice(4, 2)]) == 2


def test_distinct_hashes_never_read_the_ids_again() -> None:
    ids = pa.array([f"TX{n:011d}" for n in range(1000)])

    def unread() -> list[pa.Array]:
        raise AssertionError("the ids were read again although no hash repeats")

    assert count_duplicates([id_hashes(ids)], unread) == 0


def test_colliding_hashes_are_confirmed_on_the_ids_themselves() -> None:
    # Every id hashes alike: the count must come from comparing the strings.
    def collide(ids: pa.Array) -> np.ndarray:
        return np.zeros(len(ids), np.uint64)

    chunks = _seeded_chunks(7)
    assert _count(chunks, collide) == _exact(chunks) > 0
    assert _count([pa.array(["a", "b", "c"])], collide) == 0
