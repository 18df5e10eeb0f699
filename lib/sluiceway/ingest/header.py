"""The landing file's header -> which field of a line feeds which contract column.

Partners reorder columns, upper-case a header or add a column without warning; none of that
loses a record's meaning, so columns are matched by name (case and surrounding blanks
ignored) and the tokenizer reads each line by the file's own layout (`HeaderLayout`). What
does change the meaning fails the whole file before anything is written: a required column
missing, a column named twice, or a column the contract does not know under the feed's
`unknown_columns = "fail"`. `ignore` drops such columns; `rescue` keeps their values in
`transactions._rescued` (name -> value) so nothing the partner sent is lost. `strict`
matching keeps the older rule: exactly the contract's header line.

Pure: header fields in, a layout or a `LandingFileError` out; `landing` reads the first line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sluiceway.errors import LandingFileError

BY_NAME = "by_name"
STRICT = "strict"
MATCHINGS = (BY_NAME, STRICT)
FAIL = "fail"
IGNORE = "ignore"
RESCUE = "rescue"
UNKNOWN_COLUMN_POLICIES = (FAIL, IGNORE, RESCUE)
# The `transactions` column that holds the rescued columns' values, name -> value.
RESCUED_COLUMN = "_rescued"

WRONG_HEADER = "wrong header"
_ACTION = "Nothing was written. Fix the file's header or the contract, then re-run"


class ContractColumn(Protocol):
    """What the matcher needs of a contract column (contract.Column, or a feed's column)."""

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> bool: ...

    @property
    def sensitive(self) -> bool: ...


@dataclass(frozen=True)
class HeaderLayout:
    """How to read the lines of one file.

    `positions[i]` is the file field that feeds the contract's i-th column (None: an optional
    column the file does not have, read as null); `extra` are the file's columns the contract
    does not know, as (position, name as written); `unknown_columns` says what becomes of them.
    `names` are the contract's column names, `sensitive` those masked in rejected lines.
    """

    field_count: int
    positions: tuple[int | None, ...]
    missing_optional: tuple[str, ...] = ()
    extra: tuple[tuple[int, str], ...] = ()
    unknown_columns: str = FAIL
    names: tuple[str, ...] = ()
    sensitive: frozenset[str] = frozenset()

    def sensitive_positions(self) -> tuple[int, ...]:
        """Where the file's header put the sensitive columns (a reordered header moves them)."""
        return tuple(
            position
            for name, position in zip(self.names, self.positions, strict=True)
            if name in self.sensitive and position is not None
        )

    @property
    def rescued(self) -> tuple[tuple[int, str], ...]:
        """The extra columns whose values go into `_rescued`."""
        return self.extra if self.unknown_columns == RESCUE else ()

    @property
    def ignored(self) -> tuple[tuple[int, str], ...]:
        """The extra columns that are dropped."""
        return self.extra if self.unknown_columns == IGNORE else ()

    @property
    def in_contract_order(self) -> bool:
        """The file's fields are exactly the contract's columns in order: read as they are."""
        return self.positions == tuple(range(self.field_count))

    @property
    def reordered(self) -> bool:
        """The contract's columns appear in the file in another order."""
        present = [position for position in self.positions if position is not None]
        return present != sorted(present)

    def key_position(self) -> int | None:
        """The file field of the contract's first column (the record's id), when it is also
        the file's first field: the only field a line with the wrong field count still shows
        where it is."""
        return 0 if self.positions and self.positions[0] == 0 else None

    def outcome(self) -> str:
        """One line for `sluiceway check`: how the header was read."""
        parts = [
            "the contract's columns matched by name, in another order"
            if self.reordered
            else "the contract's columns in order"
        ]
        if self.missing_optional:
            parts.append(f"missing optional (read as null): {', '.join(self.missing_optional)}")
        if self.ignored:
            parts.append(f"ignored: {', '.join(name for _, name in self.ignored)}")
        if self.rescued:
            names = ", ".join(name for _, name in self.rescued)
            parts.append(f"rescued into {RESCUED_COLUMN}: {names}")
        return "; ".join(parts)


def contract_layout(columns: Sequence[ContractColumn]) -> HeaderLayout:
    """The layout of a file whose header is the contract's: streams, which have no header."""
    return HeaderLayout(len(columns), tuple(range(len(columns))), **_named(columns))


def in_order(names: tuple[str, ...]) -> HeaderLayout:
    """The layout of values in the feed's column order, by name only (a stream's values: the
    masking takes the feed's own layout, `contract_layout`)."""
    return HeaderLayout(len(names), tuple(range(len(names))), names=names)


def _named(columns: Sequence[ContractColumn]) -> dict[str, Any]:
    return {
        "names": tuple(column.name for column in columns),
        "sensitive": frozenset(column.name for column in columns if column.sensitive),
    }


def header_fields(first_line: bytes) -> list[str]:
    """The first line's fields, as written (a BOM dropped); raises UnicodeDecodeError."""
    text = first_line.decode("utf-8-sig").rstrip("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0] if rows else []


def header_field_count(first_line: bytes) -> int | None:
    """How many fields each line must have, or None for a header that is not UTF-8 (the file
    fails on it anyway)."""
    try:
        return len(header_fields(first_line))
    except UnicodeDecodeError:
        return None


def read_header(
    source: str,
    first_line: bytes,
    columns: Sequence[ContractColumn],
    matching: str = BY_NAME,
    unknown_columns: str = FAIL,
) -> HeaderLayout:
    """The layout of the file whose first line this is; a whole-file error if it has none."""
    try:
        fields = header_fields(first_line)
    except UnicodeDecodeError as error:
        raise LandingFileError(
            source, "header is not UTF-8", str(error), "Ask the partner for a UTF-8 file"
        ) from error
    shown = first_line[:200].decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return match_header(source, fields, columns, matching, unknown_columns, shown)


def match_header(
    source: str,
    fields: Sequence[str],
    columns: Sequence[ContractColumn],
    matching: str = BY_NAME,
    unknown_columns: str = FAIL,
    shown: str | None = None,
) -> HeaderLayout:
    """Match the header's fields to the contract's columns.

    `by_name`: case and surrounding blanks ignored, any order. `strict`: the fields (blanks
    around them ignored) must be the contract's names in the contract's order.
    """
    if matching not in MATCHINGS:
        raise ValueError(f"header matching {matching!r}: choose one of {', '.join(MATCHINGS)}")
    if unknown_columns not in UNKNOWN_COLUMN_POLICIES:
        raise ValueError(
            f"unknown_columns {unknown_columns!r}: choose one of "
            f"{', '.join(UNKNOWN_COLUMN_POLICIES)}"
        )
    names = [column.name for column in columns]
    stripped = [field.strip() for field in fields]
    shown = ",".join(fields) if shown is None else shown
    if matching == STRICT:
        if stripped != names:
            _fail_strict(source, stripped, names, shown)
        return contract_layout(columns)
    return _match_by_name(source, stripped, columns, unknown_columns, shown)


def _match_by_name(
    source: str,
    stripped: list[str],
    columns: Sequence[ContractColumn],
    unknown_columns: str,
    shown: str,
) -> HeaderLayout:
    first_at: dict[str, int] = {}
    problems: list[str] = []
    for position, name in enumerate(stripped):
        key = name.casefold()
        if key in first_at:
            problems.append(
                f"column {name!r} appears twice (fields {first_at[key] + 1} and {position + 1})"
            )
        else:
            first_at[key] = position
    positions = tuple(first_at.get(column.name.casefold()) for column in columns)
    known = {column.name.casefold() for column in columns}
    missing = [c.name for c, at in zip(columns, positions, strict=True) if at is None]
    required_missing = [
        c.name for c, at in zip(columns, positions, strict=True) if at is None and c.required
    ]
    extra = tuple(
        (position, name)
        for position, name in enumerate(stripped)
        if name.casefold() not in known and first_at[name.casefold()] == position
    )
    problems += [f"required column {name!r} is missing" for name in required_missing]
    if extra and unknown_columns == FAIL:
        label = "unknown column" if len(extra) == 1 else "unknown columns"
        # The way out, where it is the only problem: a feed setting, not a new file.
        hint = "" if problems else "; 'ignore' or 'rescue' would read the file"
        problems.append(
            f"{label} {', '.join(repr(name) for _, name in extra)} "
            f"(the feed's unknown_columns is 'fail'{hint})"
        )
    if problems:
        unexpected = [name for _, name in extra]
        raise LandingFileError(
            source,
            WRONG_HEADER,
            f"line 1 is {shown!r}: {'; '.join(problems)} "
            f"(missing: {required_missing or 'none'}; unexpected: {unexpected or 'none'})",
            _ACTION,
        )
    return HeaderLayout(
        field_count=len(stripped),
        positions=positions,
        missing_optional=tuple(missing),
        extra=extra,
        unknown_columns=unknown_columns,
        **_named(columns),
    )


def _fail_strict(source: str, found: list[str], names: list[str], shown: str) -> None:
    """The strict rule's message: the line, the expected line, and what differs."""
    missing = [name for name in names if name not in found]
    unexpected = [name for name in found if name not in names]
    detail = f"line 1 is {shown!r}; expected {','.join(names)!r}"
    if missing or unexpected:
        detail += f" (missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
    else:
        detail += " (same columns, different order)"
    raise LandingFileError(source, WRONG_HEADER, detail, _ACTION)
