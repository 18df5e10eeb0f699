"""Kafka values -> records (`stream.records`) and a batch's identity (`stream.offsets`).

The joined path (values without CR or LF tokenized as the lines of one buffer, quote-free
ones through Arrow's CSV reader) must give exactly what tokenizing every value on its own
gives: a differential test over the generator's hostile records with random damage.
"""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sluiceway import contract as c
from sluiceway.generate import generate_records
from sluiceway.ingest.parse import RECORD_SCHEMA
from sluiceway.ingest.validate import validate
from sluiceway.stream.offsets import (
    EARLIEST,
    OffsetRanges,
    lag,
    resume_offsets,
    starting_offsets_json,
    values_sha256,
)
from sluiceway.stream.records import _one_value, tokenize_values

pytestmark = pytest.mark.unit

MAX_RECORD = c.MAX_RECORD_BYTES
DAMAGE = (b'"', b"\r", b"\n", b"\r\n", b"\n\n", b",", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"")


def damaged(values: list[bytes], rng: random.Random, share: float) -> list[bytes | None]:
    """Some values with a byte sequence inserted at a random place; a few nulls."""
    out: list[bytes | None] = []
    for value in values:
        roll = rng.random()
        if roll < 0.01:
            out.append(None)
        elif roll < share:
            at = rng.randrange(len(value) + 1)
            out.append(value[:at] + rng.choice(DAMAGE) + value[at:])
        else:
            out.append(value)
    return out


def one_by_one(values: list[bytes | None]) -> pa.Table:
    """The definition: every value tokenized alone (one trailing LF or CRLF dropped)."""
    parts = []
    for position, value in enumerate(values):
        parts.append(_one_value(value or b"", position, MAX_RECORD))
    return pa.concat_tables(parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_joined_values_read_as_each_value_alone(seed):
    values, _manifest = generate_records(1_500, seed=seed, defect_rate=0.08)
    hostile = damaged(values, random.Random(seed), share=0.15)
    joined = tokenize_values(pa.array(hostile, pa.binary()), MAX_RECORD)
    joined = joined.take(pc.sort_indices(joined["line_number"]))
    alone = one_by_one(hostile)
    assert joined.num_rows == len(hostile)
    assert joined["line_number"].to_pylist() == list(range(len(hostile)))
    assert joined.to_pylist() == alone.to_pylist()


def test_every_value_is_one_record_with_the_files_reasons():
    good, manifest = generate_records(400, seed=5, defect_rate=0.1)
    records = tokenize_values(pa.array(good, pa.binary()), MAX_RECORD)
    reasons = validate(records)["reasons"].to_pylist()
    found: dict[str, int] = {}
    for codes in reasons:
        for code in codes:
            found[code] = found.get(code, 0) + 1
    # duplicate_in_file needs the whole batch (stream.batch); every other rule is per value.
    expected = {k: v for k, v in manifest.rejected_by_reason.items() if k != c.DUPLICATE_IN_FILE}
    assert found == expected


def test_a_value_holding_two_lines_is_one_record_of_the_wrong_field_count():
    line = b"T1,A,M,1.00,EUR,2026-11-25T00:00:00Z,settled,atm,6011,DE,x"
    records = tokenize_values(pa.array([line + b"\n" + line, line + b"\n"], pa.binary()), 4096)
    records = records.take(pc.sort_indices(records["line_number"]))
    assert records.num_rows == 2
    assert records["field_count"].to_pylist() == [21, 11]
    assert records["raw_line"][0].as_py() == (line + b"\n" + line).decode()


def test_no_values_no_records():
    assert tokenize_values(pa.array([], pa.binary()), 4096).schema == RECORD_SCHEMA


def test_a_batch_is_named_by_its_offset_ranges():
    partitions = pa.array([1, 0, 1, 0], pa.int32())
    offsets = pa.array([7, 3, 8, 4], pa.int64())
    ranges = OffsetRanges.of("t", partitions, offsets)
    assert ranges.ranges == {0: (3, 5), 1: (7, 9)}
    assert OffsetRanges.from_json("t", ranges.to_json()) == ranges
    assert ranges.ingest_id() == OffsetRanges("t", {1: (7, 9), 0: (3, 5)}).ingest_id()
    assert ranges.ingest_id() != OffsetRanges("t", {0: (3, 5), 1: (7, 10)}).ingest_id()
    assert ranges.ingest_id() != OffsetRanges("u", ranges.ranges).ingest_id()
    assert ranges.ingest_id().startswith("str_")


def test_the_batch_hash_is_of_the_delivered_bytes_in_offset_order():
    p, o = pa.array([0, 0], pa.int32()), pa.array([1, 2], pa.int64())
    a = values_sha256(p, o, pa.array([b"x", b"y"]))
    assert a == values_sha256(p, pa.array([2, 1], pa.int64()), pa.array([b"y", b"x"]))
    assert a != values_sha256(p, o, pa.array([b"xy", b""]))
    assert a != values_sha256(p, o, pa.array([b"x", None]))
    chunked = pa.chunked_array([pa.array([b"x"]), pa.array([b"y"])])
    assert a == values_sha256(pa.chunked_array([p]), pa.chunked_array([o]), chunked)


def test_a_stream_resumes_after_the_ledgers_batches():
    decided = [OffsetRanges("t", {0: (0, 10), 1: (0, 4)}), OffsetRanges("t", {0: (10, 25)})]
    assert resume_offsets(decided, [0, 1, 2]) == {0: 25, 1: 4, 2: EARLIEST}
    assert starting_offsets_json("t", {0: 25, 1: 4}) == '{"t": {"0": 25, "1": 4}}'
    assert lag({0: 30, 1: 4}, OffsetRanges("t", {0: (10, 25), 1: (0, 4)})) == 5
    assert int(np.int64(lag({}, OffsetRanges("t", {})))) == 0


def test_the_checkpoint_is_beside_the_tables_except_where_spark_cannot_write_s3():
    from sluiceway.settings import load_settings
    from sluiceway.stream import StreamOptions
    from sluiceway.stream.run import checkpoint_location

    options = StreamOptions(topic="t", bootstrap_servers="b")
    glue = load_settings(arguments={"profile": "glue", "warehouse": "s3://w/h", "namespace": "n"})
    assert checkpoint_location(glue, options) == "s3://w/h/_checkpoints/n/stream/t"
    local_aws = load_settings(arguments={"profile": "local-aws", "namespace": "n"})
    assert not checkpoint_location(local_aws, options).startswith("s3://")
    given = StreamOptions(topic="t", bootstrap_servers="b", checkpoint="s3://c/k")
    assert checkpoint_location(local_aws, given) == "s3://c/k"
