"""Duplicate and already-ingested ids decided in Arrow on the driver, without Spark."""

import pyarrow as pa
import pytest

from sluiceway import contract as c
from sluiceway.ingest.write import whole_file_reasons

pytestmark = pytest.mark.unit


def ids(*pairs: tuple[str, int]) -> pa.Table:
    return pa.table(
        {
            "transaction_id": pa.array([tid for tid, _ in pairs], pa.string()),
            "line_number": pa.array([line for _, line in pairs], pa.int64()),
        }
    )


def codes(found: dict) -> dict[int, list[str]]:
    return {line: [reason.code for reason in reasons] for line, reasons in found.items()}


def test_later_occurrences_are_duplicates_and_known_ids_are_flagged_on_every_line():
    file_ids = ids(("A", 2), ("B", 3), ("A", 7), ("K", 9), ("A", 11))
    found = whole_file_reasons(file_ids, pa.array(["K", "Z"]))
    assert codes(found) == {
        7: [c.DUPLICATE_IN_FILE],
        9: [c.ALREADY_INGESTED],
        11: [c.DUPLICATE_IN_FILE],
    }
    assert found[7][0].detail == "duplicate_in_file: transaction_id 'A' already appears on line 2"


@pytest.mark.parametrize("extra_known", [0, 50])
def test_the_known_set_gives_the_same_answer_whichever_side_is_larger(extra_known):
    """More known ids than file ids makes the look-up hash the file's ids instead."""
    file_ids = ids(("A", 2), ("K", 3), ("K", 4))
    known = pa.chunked_array([["K"], [f"X{n}" for n in range(extra_known)]], pa.string())
    assert codes(whole_file_reasons(file_ids, known)) == {
        3: [c.ALREADY_INGESTED],
        4: [c.DUPLICATE_IN_FILE, c.ALREADY_INGESTED],
    }
