"""The duplicate checks by 64-bit id hash: candidates by hash, decisions on the text (issue 19,
item 3). A collision may make a candidate, never a duplicate."""

import numpy as np
import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.ingest.duplicates import duplicates_in_file, id_hashes, ids_in, repeated_hashes
from sluiceway.ingest.write import whole_file_reasons

pytestmark = pytest.mark.unit


def everything_collides(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.zeros(len(ids), np.uint64)


def by_first_byte(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A tiny hash: ids sharing their first character collide."""
    firsts = [text[:1] for text in ids.to_pylist()]
    return np.array([ord(first) if first else 0 for first in firsts], np.uint64)


def random_ids(rng: np.random.Generator, count: int, prefix: str = "") -> list[str]:
    """Ids of mixed lengths (1-40 characters, some non-ASCII), in no order."""
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_é")
    return [
        prefix + "".join(rng.choice(alphabet, size=int(rng.integers(1, 40)))) for _ in range(count)
    ]


def reference(file_ids: list[str], lines: list[int], known: set[str]) -> dict[int, list[str]]:
    """The rules in plain Python: the first line of an id stays, later ones are duplicates."""
    first: dict[str, int] = {}
    for text, line in sorted(zip(file_ids, lines, strict=True), key=lambda pair: pair[1]):
        first.setdefault(text, line)
    found: dict[int, list[str]] = {}
    for text, line in zip(file_ids, lines, strict=True):
        codes = [c.DUPLICATE_IN_FILE] if first[text] < line else []
        codes += [c.ALREADY_INGESTED] if text in known else []
        if codes:
            found[line] = codes
    return found


def codes(found: dict) -> dict[int, list[str]]:
    return {line: [reason.code for reason in reasons] for line, reasons in found.items()}


def table(file_ids: list[str], lines: list[int]) -> pa.Table:
    return pa.table(
        {
            "transaction_id": pa.array(file_ids, pa.string()),
            "line_number": pa.array(lines, pa.int64()),
        }
    )


def test_equal_ids_hash_equal_whatever_the_array_layout():
    rng = np.random.default_rng(1)
    texts = random_ids(rng, 3000)
    plain = id_hashes(pa.array(texts))
    assert (id_hashes(pa.array(texts, pa.large_string())) == plain).all()
    assert (id_hashes(pa.array(["pad", *texts]).slice(1)) == plain).all()
    assert (id_hashes(pa.chunked_array([texts[:1000], texts[1000:]])) == plain).all()
    same_width = [text[:9].ljust(9, "x") for text in texts]
    fixed = id_hashes(pa.array(same_width))  # the fixed-width fast path
    assert (fixed == id_hashes(pa.array([*same_width, "longer than nine"]))[:-1]).all()
    assert len(set(plain.tolist())) == len(set(texts))


def test_ids_differing_only_after_the_first_word_or_in_length_hash_apart():
    ids = ["TX0000000000001", "TX0000000000002", "TX000000000000", "TX0000000000001\x00"]
    assert len(set(id_hashes(pa.array(ids)).tolist())) == 4


@pytest.mark.parametrize("hash_ids", [id_hashes, everything_collides, by_first_byte])
def test_random_ids_get_exactly_the_reasons_of_the_plain_rules(hash_ids):
    """Random ids, duplicates in the file and ids of earlier ingests: the same lines as the
    plain-Python rules, whether the hash is good, tiny, or the same for every id."""
    rng = np.random.default_rng(7)
    known_list = random_ids(rng, 2000, "K")
    file_ids = random_ids(rng, 3000)
    file_ids += [file_ids[int(i)] for i in rng.integers(0, 3000, 150)]  # duplicates
    file_ids += [known_list[int(i)] for i in rng.integers(0, 2000, 100)]  # already ingested
    lines = (rng.permutation(len(file_ids)) * 3 + 2).tolist()  # any order, with gaps
    known = pa.chunked_array([known_list[:700], known_list[700:]])
    found = whole_file_reasons(table(file_ids, lines), known, hash_ids)
    expected = reference(file_ids, lines, set(known_list))
    assert len(expected) > 200
    assert codes(found) == expected


@pytest.mark.parametrize("hash_ids", [id_hashes, by_first_byte])
def test_ids_read_back_chunk_by_chunk_get_the_same_reasons(hash_ids):
    """The driver reads the ids as the tasks wrote them, one chunk per task, and keeps them so."""
    rng = np.random.default_rng(3)
    known_list = random_ids(rng, 500, "K")
    file_ids = random_ids(rng, 2000)
    file_ids += [file_ids[int(i)] for i in rng.integers(0, 2000, 80)]
    file_ids += [known_list[int(i)] for i in rng.integers(0, 500, 40)]
    lines = (rng.permutation(len(file_ids)) + 2).tolist()
    whole = table(file_ids, lines)
    chunked = pa.concat_tables([whole.slice(at, 333) for at in range(0, whole.num_rows, 333)])
    assert chunked["transaction_id"].num_chunks > 1
    found = whole_file_reasons(chunked, pa.array(known_list), hash_ids)
    assert codes(found) == reference(file_ids, lines, set(known_list))
    assert found == whole_file_reasons(whole, pa.array(known_list), hash_ids)


def test_a_hash_collision_never_rejects_a_distinct_id():
    file_ids = ["A1", "A2", "A3", "B1", "A2"]
    found = whole_file_reasons(table(file_ids, [2, 3, 4, 5, 6]), pa.array(["A9", "B1"]),
                               everything_collides)  # fmt: skip
    assert codes(found) == {5: [c.ALREADY_INGESTED], 6: [c.DUPLICATE_IN_FILE]}
    assert found[6][0].detail.endswith("already appears on line 3")


def test_duplicates_in_file_keep_the_first_line_under_collisions():
    ids = pa.array(["x", "y", "x", "z", "y"])
    lines = np.array([10, 4, 2, 7, 9], np.int64)
    repeated, first = duplicates_in_file(ids, lines, hash_ids=everything_collides)
    assert repeated.tolist() == [True, False, False, False, True]
    assert first.tolist() == [2, 4, 2, 7, 4]
    assert [r.tolist() for r in duplicates_in_file(ids, lines)] == [
        repeated.tolist(),
        first.tolist(),
    ]


def test_known_ids_are_found_exactly_among_millions():
    """Enough known ids that the bitmap's false hits occur; only the true ones are found."""
    rng = np.random.default_rng(11)
    numbers = rng.permutation(2_000_000)
    known = pa.array([f"TX{n:011d}" for n in numbers[:1_500_000]])
    file_numbers = np.concatenate((numbers[1_500_000:1_600_000], numbers[:50]))
    file_ids = pa.array([f"TX{n:011d}" for n in file_numbers])
    found = ids_in(file_ids, id_hashes(file_ids), pa.chunked_array([known]))
    assert np.flatnonzero(found).tolist() == list(range(100_000, 100_050))


def test_repeated_hashes_are_found_in_either_half_of_the_split_sort():
    top = 1 << 63
    hashes = np.array([5, top | 5, 7, top | 9, 5, top | 9, 0, top, top], np.uint64)
    assert repeated_hashes(hashes).tolist() == [
        True, False, False, True, True, True, False, True, True
    ]  # fmt: skip
    assert not repeated_hashes(np.array([1, top | 1, 2], np.uint64)).any()
