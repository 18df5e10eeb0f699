"""`blank`: what the missing-field rules and the nulls of optional columns count as empty."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from sluiceway.ingest.arrow_text import blank

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
