"""Validation rules in Arrow, built from the contract: tokenized records in, reasons out.

Every record gets `reasons` (distinct reason codes in rule order; empty means accepted) and
`reason_detail` (what a person must fix, naming the field and the value, a sensitive value
masked), plus the typed
`amount_value` and `event_time_value` the tables need. The rules are whole-column
`pyarrow.compute` and numpy operations, never Python per record, so they run inside the tasks
that tokenize a chunk without a Spark row conversion. Each rule says where it is broken and
what its detail is; `reasons` turns the rules into the two columns.

No value can raise: a cast fails the whole array on one bad value, so amounts are cast only
where the contract's pattern holds, and event times are read from their digits with calendar
arithmetic (`event_time`) instead of a timestamp cast (2026-02-30 is then a reason code, not a
crash). The rules that need the whole file live in `duplicates` and `write`.

The contract's patterns match the whole value (RE2). The Spark rules they replace used Java
regexes, whose `$` also matches before a final line end: `"5411\n"` in a quoted field passed
as an mcc there and is `bad_mcc` here. On 50,000 generated and fuzzed records that was the
only difference in codes, details and typed values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway import contract as c
from sluiceway.feeds import Column, Feed, decimal_pattern, decimal_scale
from sluiceway.feeds import Rule as FeedRule
from sluiceway.ingest.arrow_text import blank, matches, printable_ascii, starts_or_ends_with
from sluiceway.ingest.event_time import event_time_micros
from sluiceway.ingest.masking import mask_accounts
from sluiceway.ingest.reasons import Rule, reason_codes, reason_details

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
INTEGER_PATTERN = r"^-?[0-9]{1,18}$"
VALUE_SUFFIX = "_value"  # the typed value of a column: amount -> amount_value


def validate(
    records: pa.Table, feed: Feed = c.TRANSACTIONS_FEED, field_count: int | None = None
) -> pa.Table:
    """Add `reasons`, `reason_detail`, the typed `<column>_value` of each typed column and
    `warnings` to the records.

    `records` has `parse.record_schema(feed)`; an empty `reasons` list means the record is
    accepted. The feed's rules run in the file's order between the column flags' rules
    (required, identifier first; max_length last); a `warn` rule's code goes to `warnings`
    instead of `reasons`. `field_count` is the file's number of fields (its header's; the
    feed's for streams). A detail quoting a sensitive value shows it masked.
    """
    sensitive = frozenset(column.name for column in feed.columns if column.sensitive)
    columns = _Columns(records, field_count or len(feed.columns), sensitive)
    typed = {column.name: _TypedColumn(columns, column, feed) for column in feed.typed_columns}
    rejecting: list[Rule] = []
    warning: list[Rule] = []
    for rule in feed.rules:
        built = _rule(columns, rule, typed.get(rule.column))
        (warning if rule.severity == "warn" else rejecting).append(built)
    rules = [
        *_shape_rules(columns),
        *_missing_rules(columns, feed),
        *_identifier_rules(columns, feed),
        *rejecting,
        *_length_rules(columns, feed),
    ]
    size = records.num_rows
    parse_error = columns.get("parse_error")
    validated = records.append_column(
        "reasons", reason_codes(rules, parse_error, size)
    ).append_column("reason_detail", reason_details(rules, size))
    for name, column in typed.items():
        validated = validated.append_column(name + VALUE_SUFFIX, column.value())
    return validated.append_column("warnings", _warnings(warning, parse_error, size))


def _warnings(rules: list[Rule], parse_error: pa.Array, size: int) -> pa.ListArray:
    if not rules:
        return pa.ListArray.from_arrays(
            pa.array(np.zeros(size + 1, np.int32)), pa.array([], pa.string())
        )
    return reason_codes(rules, parse_error, size)


class _Columns:
    """The record columns as single arrays, and which fields are present (shaped, not blank)."""

    def __init__(
        self, records: pa.Table, field_count: int, sensitive: frozenset[str] = frozenset()
    ) -> None:
        self.records = records
        self.sensitive = sensitive
        self.expected_fields = field_count
        self.size = records.num_rows
        self._arrays: dict[str, pa.Array] = {}
        self.unparsed = pc.is_valid(self.get("parse_error")).to_numpy(zero_copy_only=False)
        self.field_count = self.get("field_count").fill_null(-1).to_numpy(zero_copy_only=False)
        # Field rules apply only to records with one field per column and no parse error.
        self.shaped = ~self.unparsed & (self.field_count == field_count)
        self._present: dict[str, NDArray[np.bool_]] = {}

    def get(self, name: str) -> pa.Array:
        if name not in self._arrays:
            self._arrays[name] = self.records.column(name).combine_chunks()
        return self._arrays[name]

    def present(self, name: str) -> NDArray[np.bool_]:
        if name not in self._present:
            self._present[name] = self.shaped & ~blank(self.get(name))
        return self._present[name]

    def quoted(
        self, name: str, prefix: str, suffix: str
    ) -> Callable[[NDArray[np.int64]], pa.Array]:
        """Detail `<prefix>name '<value>'<suffix>` for the given rows."""

        def detail(rows: NDArray[np.int64]) -> pa.Array:
            values = self.shown(name, self.get(name).take(pa.array(rows, pa.int64())))
            return pc.binary_join_element_wise(f"{prefix}{name} '", values, f"'{suffix}", "")

        return detail

    def shown(self, name: str, values: pa.Array) -> pa.Array:
        """Values as a detail may quote them: a sensitive column's masked (last four kept)."""
        return mask_accounts(values) if name in self.sensitive else values


def _constant(text: str) -> Callable[[NDArray[np.int64]], pa.Array]:
    return lambda rows: pa.repeat(pa.scalar(text), len(rows))


def _shape_rules(columns: _Columns) -> list[Rule]:
    known = (c.INVALID_ENCODING, c.UNTERMINATED_QUOTE, c.BAD_QUOTING)
    known_details = pa.array([f"{code}: {c.REASONS[code]}" for code in known])

    def parse_error_detail(rows: NDArray[np.int64]) -> pa.Array:
        errors = columns.get("parse_error").take(pa.array(rows, pa.int64()))
        return known_details.take(pc.index_in(errors, value_set=pa.array(known)))

    def field_count_detail(rows: NDArray[np.int64]) -> pa.Array:
        counts = pc.cast(columns.get("field_count").take(pa.array(rows, pa.int64())), pa.string())
        return pc.binary_join_element_wise(
            f"{c.WRONG_FIELD_COUNT}: ", counts, f" fields, expected {columns.expected_fields}", ""
        )

    wrong_count = ~columns.unparsed & (columns.field_count != columns.expected_fields)
    return [
        Rule(None, columns.unparsed, parse_error_detail),
        Rule(c.WRONG_FIELD_COUNT, wrong_count, field_count_detail),
    ]


def _missing_rules(columns: _Columns, feed: Feed) -> list[Rule]:
    return [
        Rule(
            c.MISSING_REQUIRED,
            columns.shaped & ~columns.present(column.name),
            _constant(f"{c.MISSING_REQUIRED}: required field {column.name} is empty"),
        )
        for column in feed.columns
        if column.required
    ]


def _identifier_rules(columns: _Columns, feed: Feed) -> list[Rule]:
    return [
        rule
        for column in feed.columns
        if column.identifier
        for rule in _identifier_rules_of(columns, column.name)
    ]


def _identifier_rules_of(columns: _Columns, name: str) -> list[Rule]:
    """Characters no one can see, and spaces at either end, in one id column.

    The Unicode pattern runs only on values that are not printable ASCII (nearly none in a
    real file): checking every value with it costs four times as much.
    """
    values = columns.get(name)
    present = columns.present(name)
    edge = starts_or_ends_with(values, c.IDENTIFIER_EDGE)
    suspects = np.flatnonzero(present & ~printable_ascii(values))
    invisible = np.zeros(columns.size, dtype=bool)
    if len(suspects):
        found = matches(values.take(pa.array(suspects, pa.int64())), c.IDENTIFIER_FORBIDDEN_PATTERN)
        invisible[suspects[found]] = True

    def invisible_detail(rows: NDArray[np.int64]) -> pa.Array:
        chosen = values.take(pa.array(rows, pa.int64()))
        pattern = f"(?P<character>{c.IDENTIFIER_FORBIDDEN_PATTERN})"
        characters = pc.dictionary_encode(pc.extract_regex(chosen, pattern).field("character"))
        # Named by code point: the detail is read by a person, who cannot see the character.
        names = pa.array([f"U+{ord(text):04X}" for text in characters.dictionary.to_pylist()])
        return pc.binary_join_element_wise(
            f"{c.BAD_IDENTIFIER}: {name} '",
            columns.shown(name, chosen),
            "' holds ",
            names.take(characters.indices),
            " (a control, invisible or non-plain space character)",
            "",
        )

    return [
        Rule(c.BAD_IDENTIFIER, invisible, invisible_detail),
        Rule(
            c.BAD_IDENTIFIER,
            present & edge,
            columns.quoted(name, f"{c.BAD_IDENTIFIER}: ", " starts or ends with a space"),
        ),
    ]


class _TypedColumn:
    """A typed column's text parsed whole-column: where it parses, and its typed value.

    No value can raise: a cast fails the whole array on one bad value, so only text the
    parse rule accepts is cast (the rest becomes 0 first), and timestamps are read from
    their digits (`event_time_micros`).
    """

    def __init__(self, columns: _Columns, column: Column, feed: Feed) -> None:
        self.column = column
        self.text = columns.get(column.name)
        self.present = columns.present(column.name)
        self.bounds_broken = np.zeros(columns.size, dtype=bool)
        kind = column.table_type.split("(")[0]
        if kind == "timestamp":
            micros, self.parsed = event_time_micros(self.text, self.present)
            self.typed = pa.array(micros, pa.int64()).cast(TIMESTAMP_TYPE)
            return
        parse = next(rule for rule in feed.rules if rule.column == column.name and _parses(rule))
        self.pattern = parse.pattern or (
            decimal_pattern(column) if kind == "decimal" else INTEGER_PATTERN
        )
        self.parsed = self.present & matches(self.text, self.pattern)
        arrow_type = _arrow_type(column)
        self.typed = pc.cast(
            pc.if_else(pa.array(self.parsed), self.text, pa.scalar("0")), arrow_type
        )

    def scalar(self, text: str) -> pa.Scalar:
        if self.column.table_type == "timestamp":
            (micros,), _ = event_time_micros(pa.array([text]), np.ones(1, dtype=bool))
            return pa.scalar(int(micros), pa.int64()).cast(TIMESTAMP_TYPE)
        return pa.scalar(text).cast(self.typed.type)

    def value(self) -> pa.Array:
        valid = self.parsed & ~self.bounds_broken
        return pc.if_else(pa.array(valid), self.typed, pa.scalar(None, self.typed.type))


def _parses(rule: FeedRule) -> bool:
    return rule.kind in ("decimal", "integer", "timestamp")


def _arrow_type(column: Column) -> pa.DataType:
    if column.table_type == "bigint":
        return pa.int64()
    if column.table_type == "timestamp":
        return TIMESTAMP_TYPE
    return pa.decimal128(*decimal_scale(column))


def _rule(columns: _Columns, rule: FeedRule, typed: _TypedColumn | None) -> Rule:
    """One rule of the feed's file as a broken mask and its detail."""
    name, code = rule.column, rule.reason
    if rule.kind == "range" and typed is not None:
        return _range_rule(columns, rule, typed)
    if _parses(rule) and typed is not None:
        return Rule(
            code,
            typed.present & ~typed.parsed,
            columns.quoted(name, f"{code}: ", f" is not {rule.expected or _parse_expected(typed)}"),
        )
    present = columns.present(name)
    if rule.kind == "allowed":
        known = pc.is_in(columns.get(name), value_set=pa.array(sorted(rule.values), pa.string()))
        broken = present & ~known.to_numpy(zero_copy_only=False)
    else:
        broken = present & ~matches(columns.get(name), rule.pattern)
    return Rule(code, broken, columns.quoted(name, f"{code}: ", f" is not {rule.expected}"))


def _parse_expected(typed: _TypedColumn) -> str:
    kind = typed.column.table_type.split("(")[0]
    if kind == "timestamp":
        return "a valid ISO 8601 timestamp with offset (2026-11-25T13:45:12Z)"
    if kind == "bigint":
        return "a whole number"
    return f"a plain decimal with at most {decimal_scale(typed.column)[1]} places"


def _range_rule(columns: _Columns, rule: FeedRule, typed: _TypedColumn) -> Rule:
    below = np.zeros(columns.size, dtype=bool)
    above = np.zeros(columns.size, dtype=bool)
    if rule.minimum is not None:
        below = pc.less(typed.typed, typed.scalar(rule.minimum)).to_numpy(zero_copy_only=False)
    if rule.maximum is not None:
        above = pc.greater(typed.typed, typed.scalar(rule.maximum)).to_numpy(zero_copy_only=False)
    outside = typed.parsed & (below | above)
    if rule.severity != "warn":
        typed.bounds_broken |= outside
    if rule.minimum is not None and rule.maximum is not None:
        suffix = f" is outside {rule.minimum} .. {rule.maximum}"
    elif rule.minimum is not None:
        suffix = f" is below {rule.minimum}"
    else:
        suffix = f" is above {rule.maximum}"
    code = rule.reason
    return Rule(code, outside, columns.quoted(rule.column, f"{code}: ", suffix))


def _length_rules(columns: _Columns, feed: Feed) -> list[Rule]:
    return [_length_rule(columns, column) for column in feed.columns]


def _length_rule(columns: _Columns, column: Column) -> Rule:
    values = columns.get(column.name)
    # Characters never outnumber bytes: count characters only where the bytes are too many.
    long_bytes = pc.binary_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    suspects = np.flatnonzero(columns.shaped & (long_bytes > column.max_length))
    too_long = np.zeros(columns.size, dtype=bool)
    if len(suspects):
        characters = pc.utf8_length(values.take(pa.array(suspects, pa.int64())))
        too_long[suspects[characters.to_numpy(zero_copy_only=False) > column.max_length]] = True

    def detail(rows: NDArray[np.int64]) -> pa.Array:
        characters = pc.utf8_length(values.take(pa.array(rows, pa.int64())))
        return pc.binary_join_element_wise(
            f"{c.FIELD_TOO_LONG}: {column.name} has ",
            pc.cast(characters, pa.string()),
            f" characters, at most {column.max_length} allowed",
            "",
        )

    return Rule(c.FIELD_TOO_LONG, too_long, detail)
