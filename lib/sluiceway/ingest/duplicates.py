"""The duplicate_in_file rule: a transaction_id that already appeared on an earlier line.

Apart from the row rules because it needs every record of the file, not one chunk's: the
ingest decides it on the driver from the chunks' (id, line) pairs (write.whole_file_reasons),
`sluiceway check` over the whole file. One hash pass and numpy; no sort, no shuffle.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway import contract as c
from sluiceway.ingest.arrow_text import blank


def readable_ids(records: pa.Table) -> NDArray[np.bool_]:
    """Records whose transaction_id the duplicate rules can trust: not blank, and not from a
    line the tokenizer could not parse (its first field may be a fragment)."""
    ids = records.column("transaction_id").combine_chunks()
    parsed: NDArray[np.bool_] = pc.is_null(records.column("parse_error")).to_numpy(
        zero_copy_only=False
    )
    return ~blank(ids) & parsed


def duplicates_in_file(
    transaction_ids: pa.Array | pa.ChunkedArray, line_numbers: NDArray[np.int64]
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Which records repeat an id seen on an earlier line (the first stays), and that line.

    Pass only readable records (`readable_ids`), from the whole file, in any order. One hash
    pass over the ids and numpy; no sort, no shuffle of whole records.
    """
    if isinstance(transaction_ids, pa.ChunkedArray):
        transaction_ids = transaction_ids.combine_chunks()
    encoded = pc.dictionary_encode(transaction_ids)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    first = np.full(len(encoded.dictionary), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes, line_numbers)
    first_line = first[codes]
    return line_numbers > first_line, first_line


def duplicate_details(transaction_ids: pa.Array, first_lines: NDArray[np.int64]) -> pa.Array:
    """The detail of each duplicate: its id and the line it first appeared on."""
    return pc.binary_join_element_wise(
        f"{c.DUPLICATE_IN_FILE}: transaction_id '",
        transaction_ids,
        "' already appears on line ",
        pc.cast(pa.array(first_lines, pa.int64()), pa.string()),
        "",
    )
