"""`blank`: what the missing-field rules and the nulls of optional columns count as empty;
the byte-level pattern, edge and printable checks: what Arrow's own functions decide."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sluiceway.ingest.arrow_text import (
    _fixed_width_classes,
    blank,
    matches,
    printable_ascii,
    starts_or_ends_with,
)

pytestmark = pytest.mark.unit


def expected(values: list[str | None]) -> list[bool]:
    return [value is None or value.strip(" ") == "" for value in values]


def test_null_empty_and_only_spaces_are_blank_a_tab_is_not() -> None:
    values = [None, "", " ", "   ", "\t", " a", "a ", "a", "\u00a0", " \t ", "", None, "  "]
    assert blank(pa.array(values, pa.string())).tolist() == expected(values)


def test_slices_and_arrays_of_empty_values_only() -> None:
    values = ["x", " ", "", "  y", None, "   ", ""]
    whole = pa.array(values, pa.string())
    for start in range(len(values)):
        for stop in range(start, len(values) + 1):
            assert blank(whole.slice(start, stop - start)).tolist() == expected(values[start:stop])
    assert blank(pa.array(["", "", None], pa.string())).tolist() == [True, True, True]


def test_random_values() -> None:
    rng = random.Random(3)
    values = [
        None if rng.random() < 0.05 else "".join(rng.choices(" a\t", k=rng.randrange(0, 4)))
        for _ in range(5_000)
    ]
    assert blank(pa.array(values, pa.string())).tolist() == expected(values)


# --------------------------------------------- the byte-level fast paths against Arrow's own


def _random_values(rng: random.Random, alphabet: str, count: int = 4_000) -> list[str | None]:
    return [
        None if rng.random() < 0.05 else "".join(rng.choices(alphabet, k=rng.randrange(0, 7)))
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "pattern",
    ["^[0-9]{4}$", "^[A-Z]{3}$", "^[A-Z][a-z0-9-]{2}$", "^[-0-9]{2}[x]$", "^[0-9]$"],
)
def test_fixed_width_patterns_match_as_re2_does(pattern: str) -> None:
    assert _fixed_width_classes(pattern) is not None  # the fast path is the one tested
    rng = random.Random(pattern)
    values = _random_values(rng, "0189AZaz-x \n\u00e9\u0663")
    values += ["5411", "5411\n", " 5411", "١٢٣٤", "ABC", "Ab-", "--x", "7"]
    array = pa.array(values, pa.string())
    regex = pc.match_substring_regex(array, pattern).fill_null(False).to_numpy(zero_copy_only=False)
    assert matches(array, pattern).tolist() == regex.tolist()
    for start, length in [(3, 50), (1, 0), (len(values) - 5, 5)]:
        part = array.slice(start, length)
        expected = pc.match_substring_regex(part, pattern).fill_null(False)
        assert matches(part, pattern).tolist() == expected.to_pylist()


@pytest.mark.parametrize(
    "pattern",
    ["^[0-9]{1,4}$", "^[^0-9]{2}$", "[0-9]{4}", "^[0-9]{4}", "^[\\d]{2}$", "^a[0-9]$", "^$"],
)
def test_other_patterns_take_re2(pattern: str) -> None:
    assert _fixed_width_classes(pattern) is None
    values = pa.array(["12", "1234", "ab", "a1", "", None, "x1234y"], pa.string())
    expected = pc.match_substring_regex(values, pattern).fill_null(False)
    assert matches(values, pattern).tolist() == expected.to_pylist()


def test_edges_and_printable_ascii_as_arrow_decides_them() -> None:
    rng = random.Random(11)
    values = [*_random_values(rng, "a \t\u00a0\u200b~\x7f"), "", " ", "a", None]
    array = pa.array(values, pa.string())
    edge = pc.or_(pc.starts_with(array, " "), pc.ends_with(array, " ")).fill_null(False)
    printable = pc.ascii_is_printable(array).fill_null(True)
    for start, length in [(0, len(values)), (7, 100), (2, 0)]:
        part = slice(start, start + length)
        assert (
            starts_or_ends_with(array.slice(start, length), " ").tolist()
            == (edge.to_pylist()[part])
        )
        assert printable_ascii(array.slice(start, length)).tolist() == (printable.to_pylist()[part])
    clean = pa.array(["TX1", "", None, "A b"], pa.string())
    assert printable_ascii(clean).tolist() == [True, True, True, True]
    assert starts_or_ends_with(pa.array(["", None], pa.string()), " ").tolist() == [False, False]
