"""Validation rules as pure DataFrame -> DataFrame transforms, built from the contract.

Every record gets `reasons` (array of reason codes; empty means accepted) and `reason_detail`
(what a person must fix, naming the line and the field). Rules run in Spark SQL expressions,
not Python, so validation costs no serialization.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sluiceway import contract as c

AMOUNT_TYPE = f"decimal({c.AMOUNT_PRECISION},{c.AMOUNT_SCALE})"


def _blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def _rule(condition: Column, code: str, detail: Column) -> tuple[Column, Column]:
    """A (reason code, message) pair that is null where the rule holds."""
    return F.when(condition, F.lit(code)), F.when(condition, detail)


def _quoted(column_name: str) -> Column:
    return F.concat(F.lit(f"{column_name} '"), F.col(column_name), F.lit("'"))


def _not_in(column_name: str, allowed: Iterable[str]) -> Column:
    return ~F.col(column_name).isin(sorted(allowed))


def rule_columns() -> list[tuple[Column, Column]]:
    """Every per-record rule of the contract, in the order a person would fix them."""
    shaped = F.col("parse_error").isNull() & (F.col("field_count") == len(c.COLUMN_NAMES))
    rules = [
        (F.col("parse_error"), _parse_error_detail()),
        _rule(
            F.col("parse_error").isNull() & (F.col("field_count") != len(c.COLUMN_NAMES)),
            c.WRONG_FIELD_COUNT,
            F.format_string(
                f"{c.WRONG_FIELD_COUNT}: %d fields, expected {len(c.COLUMN_NAMES)}",
                F.col("field_count"),
            ),
        ),
    ]
    rules += [
        _rule(
            shaped & _blank(F.col(column.name)),
            c.MISSING_REQUIRED,
            F.lit(f"{c.MISSING_REQUIRED}: required field {column.name} is empty"),
        )
        for column in c.COLUMNS
        if column.required
    ]
    present = {name: shaped & ~_blank(F.col(name)) for name in c.COLUMN_NAMES}
    amount_ok = F.col("amount").rlike(c.AMOUNT_PATTERN)
    amount = F.col("amount").cast(AMOUNT_TYPE)
    rules += [
        _rule(
            present["amount"] & ~amount_ok,
            c.BAD_AMOUNT_FORMAT,
            F.concat(
                F.lit(f"{c.BAD_AMOUNT_FORMAT}: "),
                _quoted("amount"),
                F.lit(f" is not a plain decimal with at most {c.AMOUNT_SCALE} places"),
            ),
        ),
        _rule(
            present["amount"]
            & amount_ok
            & ((amount < F.lit(c.AMOUNT_MIN)) | (amount > F.lit(c.AMOUNT_MAX))),
            c.AMOUNT_OUT_OF_RANGE,
            F.concat(
                F.lit(f"{c.AMOUNT_OUT_OF_RANGE}: "),
                _quoted("amount"),
                F.lit(f" is outside {c.AMOUNT_MIN} .. {c.AMOUNT_MAX}"),
            ),
        ),
        _allowed("currency", c.CURRENCIES, c.UNKNOWN_CURRENCY, present, "an ISO 4217 code"),
        _allowed("country", c.COUNTRIES, c.UNKNOWN_COUNTRY, present, "an ISO 3166-1 alpha-2 code"),
        _allowed("status", c.STATUSES, c.UNKNOWN_STATUS, present, ", ".join(c.STATUSES)),
        _allowed("channel", c.CHANNELS, c.UNKNOWN_CHANNEL, present, ", ".join(c.CHANNELS)),
        _rule(
            present["event_time"] & _event_time_shaped() & _event_time_out_of_range(),
            c.EVENT_TIME_OUT_OF_RANGE,
            F.concat(
                F.lit(f"{c.EVENT_TIME_OUT_OF_RANGE}: "),
                _quoted("event_time"),
                F.lit(f" is outside {c.EVENT_TIME_MIN} .. {c.EVENT_TIME_MAX}"),
            ),
        ),
        _rule(
            present["event_time"] & ~_event_time_shaped(),
            c.BAD_EVENT_TIME,
            F.concat(
                F.lit(f"{c.BAD_EVENT_TIME}: "),
                _quoted("event_time"),
                F.lit(" is not a valid ISO 8601 timestamp with offset (2026-11-25T13:45:12Z)"),
            ),
        ),
        _rule(
            present["mcc"] & ~F.col("mcc").rlike(c.MCC_PATTERN),
            c.BAD_MCC,
            F.concat(F.lit(f"{c.BAD_MCC}: "), _quoted("mcc"), F.lit(" is not 4 digits")),
        ),
    ]
    rules += [
        _rule(
            shaped & (F.length(F.col(column.name)) > column.max_length),
            c.FIELD_TOO_LONG,
            F.format_string(
                f"{c.FIELD_TOO_LONG}: {column.name} has %d characters, at most "
                f"{column.max_length} allowed",
                F.length(F.col(column.name)),
            ),
        )
        for column in c.COLUMNS
    ]
    return rules


def _event_time_shaped() -> Column:
    """The text has the contract's ISO 8601 shape and names a real instant."""
    return F.col("event_time").rlike(c.EVENT_TIME_PATTERN) & event_time().isNotNull()


def _event_time_out_of_range() -> Column:
    return (event_time() < F.to_timestamp(F.lit(c.EVENT_TIME_MIN))) | (
        event_time() > F.to_timestamp(F.lit(c.EVENT_TIME_MAX))
    )


def _parse_error_detail() -> Column:
    detail = F.lit(None).cast("string")
    for code in (c.INVALID_ENCODING, c.UNTERMINATED_QUOTE, c.BAD_QUOTING):
        detail = F.when(
            F.col("parse_error") == code, F.lit(f"{code}: {c.REASONS[code]}")
        ).otherwise(detail)
    return detail


def _allowed(
    name: str, allowed: Iterable[str], code: str, present: dict[str, Column], expected: str
) -> tuple[Column, Column]:
    return _rule(
        present[name] & _not_in(name, allowed),
        code,
        F.concat(F.lit(f"{code}: "), _quoted(name), F.lit(f" is not {expected}")),
    )


def event_time() -> Column:
    """The event time as a UTC timestamp; null when the text is not a real instant."""
    return F.to_timestamp(F.col("event_time"))


def validate(records: DataFrame) -> DataFrame:
    """Add `reasons` and `reason_detail`; an empty `reasons` array means the record is accepted."""
    rules = rule_columns()
    codes = F.array_distinct(
        F.filter(F.array(*[code for code, _ in rules]), lambda x: x.isNotNull())
    )
    details = F.concat_ws("; ", *[detail for _, detail in rules])
    return records.withColumn("reasons", codes).withColumn("reason_detail", details)


def flag_duplicates_in_file(records: DataFrame) -> DataFrame:
    """Every occurrence of a transaction_id after its first (by line number) is rejected.

    Why an aggregate and not a window: the window would shuffle and sort every full record;
    this shuffles only (id, line), and the few repeated ids are joined back (broadcast).
    """
    readable = ~_blank(F.col("transaction_id")) & F.col("parse_error").isNull()
    repeated = (
        records.where(readable)
        .groupBy("transaction_id")
        .agg(F.min("line_number").alias("_first_line"), F.count(F.lit(1)).alias("_seen"))
        .where(F.col("_seen") > 1)
        .select(F.col("transaction_id").alias("_repeated_id"), "_first_line")
    )
    joined = records.join(repeated, records["transaction_id"] == repeated["_repeated_id"], "left")
    return _add_reason(
        joined,
        readable & (F.col("line_number") > F.col("_first_line")),
        c.DUPLICATE_IN_FILE,
        F.format_string(
            f"{c.DUPLICATE_IN_FILE}: transaction_id '%s' already appears on line %d",
            F.col("transaction_id"),
            F.col("_first_line"),
        ),
    ).drop("_repeated_id", "_first_line")


def flag_already_ingested(records: DataFrame, existing_ids: DataFrame) -> DataFrame:
    """Reject records whose transaction_id is already in `transactions` (within the window).

    Only the ids meet in the shuffle; the (usually few) ids found are joined back.
    """
    file_ids = records.select(F.col("transaction_id").alias("_known_id"))
    known = (
        existing_ids.select(F.col("transaction_id").alias("_known_id"))
        .join(file_ids, "_known_id", "left_semi")
        .distinct()
    )
    joined = records.join(known, records["transaction_id"] == known["_known_id"], "left")
    return _add_reason(
        joined,
        F.col("_known_id").isNotNull(),
        c.ALREADY_INGESTED,
        F.format_string(
            f"{c.ALREADY_INGESTED}: transaction_id '%s' is already in transactions",
            F.col("transaction_id"),
        ),
    ).drop("_known_id")


def _add_reason(records: DataFrame, condition: Column, code: str, detail: Column) -> DataFrame:
    return records.withColumn(
        "reasons",
        F.when(condition, F.array_union(F.col("reasons"), F.array(F.lit(code)))).otherwise(
            F.col("reasons")
        ),
    ).withColumn(
        "reason_detail",
        F.when(
            condition,
            F.when(F.col("reason_detail") == "", detail).otherwise(
                F.concat_ws("; ", F.col("reason_detail"), detail)
            ),
        ).otherwise(F.col("reason_detail")),
    )


def _optional(name: str) -> Column:
    return F.when(_blank(F.col(name)), F.lit(None)).otherwise(F.col(name)).alias(name)


def to_transactions(validated: DataFrame, lineage: dict[str, Column]) -> DataFrame:
    """Accepted records typed as the `transactions` table, with lineage columns."""
    typed = {
        "amount": F.col("amount").cast(AMOUNT_TYPE).alias("amount"),
        "event_time": event_time().alias("event_time"),
    }
    columns = [
        typed.get(column.name, F.col(column.name) if column.required else _optional(column.name))
        for column in c.COLUMNS
    ]
    return validated.where(F.size("reasons") == 0).select(
        *columns,
        lineage["source_file"].alias("source_file"),
        lineage["ingest_id"].alias("ingest_id"),
        F.col("line_number"),
        F.col("last_line_number"),
        lineage["ingested_at"].alias("ingested_at"),
    )


def raw_text() -> Column:
    """The record as it stood in the file; the tokenizer leaves it null for plain lines."""
    return F.coalesce(F.col("raw_line"), F.concat_ws(c.DELIMITER, *c.COLUMN_NAMES))


def _lines_label() -> Column:
    """`line 7`, or `lines 7-9` for a record over several physical lines."""
    return F.when(
        F.col("last_line_number") > F.col("line_number"),
        F.format_string("lines %d-%d", F.col("line_number"), F.col("last_line_number")),
    ).otherwise(F.format_string("line %d", F.col("line_number")))


def to_rejected(validated: DataFrame, lineage: dict[str, Column]) -> DataFrame:
    """Rejected records as the `rejected_records` table: raw text, line, reasons, detail."""
    return validated.where(F.size("reasons") > 0).select(
        lineage["source_file"].alias("source_file"),
        lineage["ingest_id"].alias("ingest_id"),
        F.col("line_number"),
        F.col("last_line_number"),
        raw_text().alias("raw_line"),
        F.col("raw_bytes"),
        F.col("reasons"),
        F.concat(_lines_label(), F.lit(": "), F.col("reason_detail")).alias("reason_detail"),
        F.col("transaction_id"),
        lineage["ingested_at"].alias("ingested_at"),
    )
