"""Arrow string columns read as numpy, a whole column at a time: bytes, blank, pattern.

Shared by the row rules, the event-time parser, the duplicate rule and the table rows, so
"blank" and "matches the contract's pattern" mean the same everywhere. Zero-copy where Arrow
allows it: these run inside the tasks, on every record of a chunk.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray


def blank(values: pa.Array) -> NDArray[np.bool_]:
    """Null, empty or only spaces (Spark's trim, so a tab is not blank).

    Only values that start with a space are trimmed; the others are decided from their
    lengths and first bytes, read straight from Arrow's buffers."""
    offsets, data = string_buffers(values)
    missing: NDArray[np.bool_] = offsets[1:] == offsets[:-1]
    if values.null_count:
        missing |= pc.is_null(values).to_numpy(zero_copy_only=False)
    if not len(data):
        return missing
    # An empty value's "first byte" is its neighbour's: it is already missing.
    first = data[np.minimum(offsets[:-1], len(data) - 1)]
    spaced = np.flatnonzero((first == ord(" ")) & ~missing)
    if len(spaced):
        trimmed = pc.utf8_trim(values.take(pa.array(spaced, pa.int64())), " ")
        missing[spaced[pc.equal(trimmed, "").to_numpy(zero_copy_only=False)]] = True
    return missing


def matches(values: pa.Array, pattern: str) -> NDArray[np.bool_]:
    """Where `pattern` (RE2) matches the value; False for null."""
    matched: NDArray[np.bool_] = (
        pc.match_substring_regex(values, pattern).fill_null(False).to_numpy(zero_copy_only=False)
    )
    return matched


def string_buffers(text: pa.Array) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """A string array's offsets (int64, one more than values) and data bytes, zero-copy."""
    text = text.cast(pa.string())
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        text.offset : text.offset + len(text) + 1
    ]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    return offsets.astype(np.int64), data
