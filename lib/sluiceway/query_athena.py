"""The Athena backend of the analyst query: awswrangler in the workgroup and Glue database.

Athena's plain (non-CTAS) result gives arrays, maps and rows as text; they are parsed here
into lists and dicts with the element types of the tables' DDL, so both backends return the
same Python values.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sluiceway.query_dialect import pin_athena_sql
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class AthenaClient:
    """The two awswrangler calls the Athena backend makes; tests pass recording fakes."""

    read_sql_query: Callable[..., pd.DataFrame]
    get_query_columns_types: Callable[..., dict[str, str]]

    @classmethod
    def from_awswrangler(cls, region: str | None = None) -> AthenaClient:
        import awswrangler as wr
        import boto3

        session = boto3.Session(region_name=region) if region else None
        return cls(
            functools.partial(wr.athena.read_sql_query, boto3_session=session),
            functools.partial(wr.athena.get_query_columns_types, boto3_session=session),
        )


def athena_query(
    settings: Settings,
    sql: str,
    snapshots: Mapping[str, int] | None = None,
    athena: AthenaClient | None = None,
) -> pd.DataFrame:
    """Run SQL on Athena in the workgroup and Glue database (namespace) from Settings.

    `ctas_approach=False`: the CTAS approach needs rights to create and drop Glue tables, which
    analysts do not get, and cannot return `timestamp with time zone` (`$snapshots`); Athena's
    plain result is text for arrays and maps, so they are parsed here (`parse_athena_value`).
    """
    client = athena or AthenaClient.from_awswrangler(settings.aws_region)
    if snapshots:
        sql = pin_athena_sql(sql, snapshots, settings.namespace)
    frame = client.read_sql_query(
        sql,
        database=settings.namespace,
        workgroup=settings.athena_workgroup,
        ctas_approach=False,
    )
    types = client.get_query_columns_types(
        query_execution_id=frame.query_metadata["QueryExecutionId"]
    )
    return type_nested_columns(frame, types)


def _element_converter(kind: str) -> Callable[[str], Any]:
    """`array<T>` or `map<string,T>` (the tables' DDL types) -> a converter to T."""
    inner = kind[kind.index("<") + 1 : -1]
    leaf = inner.split(",", 1)[1] if kind.startswith("map<") else inner
    if leaf in ("bigint", "int"):
        return int
    if leaf.startswith("decimal"):
        return Decimal
    return str


# Element types of the tables' array and map columns, so `SELECT * FROM ingest_ledger` on
# Athena gives the same ints and Decimals inside maps as the local backend.
_NESTED_COLUMNS: dict[str, Callable[[str], Any]] = {
    name: _element_converter(kind)
    for table in DEFINITIONS.values()
    for name, kind in table.columns
    if kind.startswith(("array<", "map<"))
}

_SCALAR_END = re.compile(r", |\]|\}")


def parse_athena_value(text: object, element: Callable[[str], Any] = str) -> Any:
    """An array (`[a, b]`), map or row (`{k=v, k2=v2}`) from Athena's text result, typed.

    Leaves are converted with `element`; `null` becomes None. Athena writes nested values
    unquoted, so a string holding ", " or "=" is ambiguous; the sluiceway tables' reason codes,
    currencies and flags never hold them.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    value, end = _parse_nested(str(text), 0, element)
    if end != len(str(text)):
        raise ValueError(f"unexpected text at {end} in Athena value {text!r}")
    return value


def _parse_nested(text: str, pos: int, element: Callable[[str], Any]) -> tuple[Any, int]:
    opening = text[pos : pos + 1]
    if opening in ("[", "{"):
        closing = "]" if opening == "[" else "}"
        items: list[Any] = []
        entries: dict[str, Any] = {}
        pos += 1
        if text.startswith(closing, pos):
            return (items if opening == "[" else entries), pos + 1
        while True:
            if opening == "{":
                equals = text.find("=", pos)
                if equals < 0:
                    raise ValueError(f"map entry without '=' at {pos} in {text!r}")
                key = text[pos:equals]
                entries[key], pos = _parse_nested(text, equals + 1, element)
            else:
                item, pos = _parse_nested(text, pos, element)
                items.append(item)
            if text.startswith(", ", pos):
                pos += 2
            elif text.startswith(closing, pos):
                return (items if opening == "[" else entries), pos + 1
            else:
                raise ValueError(f"expected ', ' or {closing!r} at {pos} in {text!r}")
    found = _SCALAR_END.search(text, pos)
    end = found.start() if found else len(text)
    scalar = text[pos:end]
    return (None if scalar == "null" else element(scalar)), end


def type_nested_columns(frame: pd.DataFrame, column_types: Mapping[str, str]) -> pd.DataFrame:
    """Parse the array, map and row columns of an Athena text result into lists and dicts."""
    for name, kind in column_types.items():
        if name in frame.columns and kind.lower().startswith(("array", "map", "row")):
            element = _NESTED_COLUMNS.get(name, str)
            frame[name] = [parse_athena_value(value, element) for value in frame[name]]
    return frame
