"""The Parquet files the tasks write: a dictionary for text only."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluiceway.iceberg_files import WriteTarget, write_parquet

pytestmark = pytest.mark.unit


def test_text_columns_get_a_dictionary_and_numbers_and_times_do_not(tmp_path: Path):
    schema = pa.schema(
        [
            pa.field("currency", pa.string()),
            pa.field("line_number", pa.int64()),
            pa.field("amount", pa.decimal128(18, 2)),
            pa.field("event_time", pa.timestamp("us", tz="UTC")),
        ]
    )
    rows = pa.table(
        {
            "currency": ["EUR", "USD"] * 500,
            "line_number": list(range(1000)),
            "amount": [Decimal(n) / 100 for n in range(1000)],
            "event_time": [datetime(2026, 11, 25, tzinfo=UTC)] * 1000,
        },
        schema=schema,
    )
    target = WriteTarget("t", str(tmp_path), schema, None, None)
    written = write_parquet(rows, target, None, "part")
    group = pq.ParquetFile(written.path).metadata.row_group(0)
    dictionary = {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page
        for i in range(group.num_columns)
    }
    assert dictionary == {
        "currency": True, "line_number": False, "amount": False, "event_time": False
    }  # fmt: skip
    assert pq.read_table(written.path).equals(rows)
