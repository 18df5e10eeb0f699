"""Rejected records keep no sensitive value (issue 21 item 4), on real Spark and Iceberg, read
back with DuckDB: every column of `rejected_records` (raw_bytes too), the ledger and every file
the ingest left in the namespace's folder are searched for the accounts of rejected lines of
every shape; the last four stay visible, and reasons and line numbers are those of the rules
on the unmasked records.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sluiceway import contract as c
from sluiceway.ingest import ingest_file
from sluiceway.ingest.parse import tokenize
from sluiceway.ingest.reasons import accepted_mask
from sluiceway.ingest.validate import validate
from sluiceway.statuses import COMPLETED
from sluiceway.stream.batch import KafkaBatch, ingest_batch

pytestmark = pytest.mark.integration

TAIL = "EUR,2026-11-25T10:00:00Z,settled,atm,6011,DE"


def account(number: int) -> str:
    return f"DE89370400440532{number:06d}"


def counterparty(number: int) -> str:
    return f"NL91ABNA0417{number:06d}"


def line(number: int, amount: str = "1.00", text: str = "x") -> str:
    return f"T{number},{account(number)},{counterparty(number)},{amount},{TAIL},{text}"


# Landing lines 2.. (after the header): one accepted, then every shape of rejected line.
LINES: list[bytes] = [
    line(2).encode(),  # accepted: its account stays whole in `transactions`
    line(3, amount="12.345").encode() + b"\r",  # bad amount, CRLF
    (line(4) + ",extra").encode(),  # wrong field count: one too many
    f"T5,{account(5)},{counterparty(5)}".encode(),  # wrong field count: too few
    line(6, text='"never closed').encode(),  # unterminated quote
    ('"' + line(7)).encode(),  # unterminated quote before the transaction id
    line(8, text='12" pizza').encode(),  # bad quoting
    line(9).encode().replace(b"DE89", b"DE\xc9"),  # bad UTF-8 inside the account
    line(10, text="Caf\xe9").encode("latin-1"),  # bad UTF-8 in the description
    line(11).replace(account(11), account(11)[:6] + "\u200b" + account(11)[6:]).encode(),
    line(12).replace(account(12), f'"{account(12)}"').replace("EUR", "XXY").encode(),
    # Quoted ids, a record over two lines, a bad amount ("1e3", below).
    line(13, text='"two\nlines"').replace(counterparty(13), f'"{counterparty(13)}"').encode(),
    line(15, amount="1e3").encode() + b"\r",  # CRLF
]
LINES[11] = LINES[11].replace(b"1.00", b"1e3")
SECRETS = (
    [
        value
        for number in (3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15)
        for value in (account(number), counterparty(number))
    ]
    + [
        counterparty(9),
        account(9).replace("DE89", "DE\ufffd"),  # as the bad byte reads back
        account(11)[:6] + "\u200b" + account(11)[6:],  # as line 11 holds it
    ]
)
# Today's reasons and line ranges (before masking): masking must not change one of them.
EXPECTED = [
    (3, 3, [c.BAD_AMOUNT_FORMAT]),
    (4, 4, [c.WRONG_FIELD_COUNT]),
    (5, 5, [c.WRONG_FIELD_COUNT]),
    (6, 6, [c.UNTERMINATED_QUOTE]),
    (7, 7, [c.UNTERMINATED_QUOTE]),
    (8, 8, [c.BAD_QUOTING]),
    (9, 9, [c.INVALID_ENCODING]),
    (10, 10, [c.INVALID_ENCODING]),
    (11, 11, [c.BAD_IDENTIFIER]),
    (12, 12, [c.UNKNOWN_CURRENCY]),
    (13, 14, [c.BAD_AMOUNT_FORMAT]),
    (15, 15, [c.BAD_AMOUNT_FORMAT]),
]


def shown(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def assert_no_secret(where: str, value: object) -> None:
    text = shown(value)
    for secret in SECRETS:
        assert secret[:-4] not in text, f"{where} holds {secret}: {text!r}"


def test_rejected_records_hold_no_sensitive_value_whatever_the_line_shape(
    spark, isolated_settings, tmp_path, duckdb_query
):
    settings = isolated_settings
    data = c.HEADER_LINE.encode() + b"\n" + b"\n".join(LINES) + b"\n"
    landing = tmp_path / "hostile.csv"
    landing.write_bytes(data)

    result = ingest_file(spark, settings, str(landing))

    assert result.status == "completed", result.message
    assert (result.accepted, result.rejected) == (1, len(EXPECTED))
    validated = validate(tokenize(data.split(b"\n", 1)[1], first_line_number=2))
    unmasked = validated.filter(pc.invert(accepted_mask(validated)))
    today = sorted(
        zip(
            unmasked["line_number"].to_pylist(),
            unmasked["last_line_number"].to_pylist(),
            unmasked["reasons"].to_pylist(),
            strict=True,
        )
    )
    assert today == EXPECTED
    rows = duckdb_query(settings, "SELECT * FROM rejected_records ORDER BY line_number")
    assert [(row[2], row[3], list(row[6])) for row in rows] == EXPECTED
    for row in rows:
        for value in row:
            assert_no_secret(f"rejected_records line {row[2]}", value)
    raw_lines = {row[2]: row[4] for row in rows}
    for number in (3, 4, 6, 8, 12, 13, 15):
        assert account(number)[-4:] in raw_lines[number], raw_lines[number]
        assert counterparty(number)[-4:] in raw_lines[number], raw_lines[number]
    assert raw_lines[12].startswith(f'T12,"{"*" * 18}{account(12)[-4:]}",')
    assert f',"{"*" * 14}{counterparty(13)[-4:]}",' in raw_lines[13]
    assert_no_secret("ingest_ledger", duckdb_query(settings, "SELECT * FROM ingest_ledger"))
    ((kept,),) = duckdb_query(settings, "SELECT account_id FROM transactions")
    assert kept == account(2), "accepted records are not masked"

    # Nothing else the ingest left (staged ids, figures, metadata) holds an account either.
    searched = 0
    for path in (Path(settings.warehouse) / settings.namespace).rglob("*"):
        if not path.is_file() or "transactions" in path.relative_to(settings.warehouse).parts:
            continue
        searched += 1
        if path.suffix == ".parquet":
            assert_no_secret(str(path), pq.read_table(path).to_pylist())
        else:
            assert_no_secret(str(path), path.read_bytes())
    assert searched > 5


def test_stream_values_rejected_keep_no_sensitive_value(spark, isolated_settings, duckdb_query):
    """A stream builds its odd values' raw text itself (stream.records): masked all the same."""
    settings = isolated_settings
    values = [
        line(3, amount="12.345").encode(),
        line(4).encode() + b"\n" + line(5).encode(),  # two lines in one value
        line(6, text='"open').encode(),
        line(8).encode().replace(b"DE89", b"DE\xc9"),
        line(10, text="Caf\xe9").encode("latin-1"),
        line(11).replace(account(11), f'"{account(11)}"').replace("EUR", "XXY").encode(),
    ]
    records = pa.table(
        {
            "partition": pa.array([0] * len(values), pa.int32()),
            "offset": pa.array(range(len(values)), pa.int64()),
            "value": pa.array(values, pa.binary()),
        }
    )

    result = ingest_batch(spark, settings, KafkaBatch.of("partner-transactions", records))

    assert result.status == COMPLETED, result.message
    rows = duckdb_query(settings, "SELECT * FROM rejected_records ORDER BY line_number")
    assert [(row[2], list(row[6])) for row in rows] == [
        (0, [c.BAD_AMOUNT_FORMAT]),
        (1, [c.WRONG_FIELD_COUNT]),
        (2, [c.UNTERMINATED_QUOTE]),
        (3, [c.INVALID_ENCODING]),
        (4, [c.INVALID_ENCODING]),
        (5, [c.UNKNOWN_CURRENCY]),
    ]
    for row in rows:
        for value in row:
            assert_no_secret(f"rejected_records offset {row[2]}", value)
    assert account(4)[-4:] in rows[1][4] and account(11)[-4:] in rows[5][4]
