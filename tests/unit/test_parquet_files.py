"""The Parquet files the tasks write: a dictionary for text only, not for the key."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluiceway.iceberg_files import WriteTarget, by_day, write_parquet

pytestmark = pytest.mark.unit


def test_text_columns_get_a_dictionary_and_numbers_times_and_the_key_do_not(tmp_path: Path):
    schema = pa.schema(
        [
            pa.field("transaction_id", pa.string()),
            pa.field("currency", pa.string()),
            pa.field("line_number", pa.int64()),
            pa.field("amount", pa.decimal128(18, 2)),
            pa.field("event_time", pa.timestamp("us", tz="UTC")),
        ]
    )
    rows = pa.table(
        {
            "transaction_id": [f"tx-{n:06d}" for n in range(1000)],
            "currency": ["EUR", "USD"] * 500,
            "line_number": list(range(1000)),
            "amount": [Decimal(n) / 100 for n in range(1000)],
            "event_time": [datetime(2026, 11, 25, tzinfo=UTC)] * 1000,
        },
        schema=schema,
    )
    target = WriteTarget("t", str(tmp_path), schema, None, None, ("transaction_id",))
    written = write_parquet(rows, target, None, "part")
    group = pq.ParquetFile(written.path).metadata.row_group(0)
    dictionary = {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page
        for i in range(group.num_columns)
    }
    assert dictionary == {
        "transaction_id": False,
        "currency": True, "line_number": False, "amount": False, "event_time": False
    }  # fmt: skip
    assert pq.read_table(written.path).equals(rows)


def test_rows_of_one_day_are_its_partition_whole_and_several_days_are_split(tmp_path: Path):
    schema = pa.schema(
        [pa.field("event_time", pa.timestamp("us", tz="UTC")), pa.field("n", pa.int64())]
    )
    target = WriteTarget("t", str(tmp_path), schema, "event_time", "event_time_day")
    one_day = pa.table(
        {"event_time": [datetime(2026, 11, 25, h, tzinfo=UTC) for h in (0, 12, 23)],
         "n": [1, 2, 3]},
        schema=schema,
    )  # fmt: skip
    [(label, rows)] = by_day(one_day, target)
    assert label == "event_time_day=2026-11-25"
    assert rows is one_day
    two_days = pa.table(
        {"event_time": [datetime(2026, 11, d, tzinfo=UTC) for d in (25, 24, 25)],
         "n": [1, 2, 3]},
        schema=schema,
    )  # fmt: skip
    assert [(label, rows["n"].to_pylist()) for label, rows in by_day(two_days, target)] == [
        ("event_time_day=2026-11-24", [2]),
        ("event_time_day=2026-11-25", [1, 3]),
    ]
