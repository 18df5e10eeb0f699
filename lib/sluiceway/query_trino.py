"""Analyst SQL on a Trino server, with the Python values the other backends return.

Why: Athena is Trino, and Athena has no local stand-in (moto's Athena returns canned rows);
CI runs the analysts' SQL on a real Trino (lib/sluiceway/trino_server.py) over the tables
Spark wrote. `TrinoConnection.frame` speaks Trino's client protocol (HTTP + JSON, standard
library only) and types the values as `query` does: DECIMAL as `decimal.Decimal`, arrays as
lists, maps and rows as dicts, timestamps as pandas Timestamps in UTC.

`athena_client` puts Trino behind the two awswrangler calls the Athena backend makes, with
arrays, maps and rows as Athena's text (`[a, b]`, `{k=v}`), so `query(..., athena=...)` and
the report run their production Athena path, pins and parsing included, on real Trino.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SluicewayError
from sluiceway.query_athena import AthenaClient

if TYPE_CHECKING:
    import pandas as pd

USER = "sluiceway"
REQUEST_TIMEOUT_SECONDS = 120
# Trino answers 502/503/504 while busy; its protocol says to retry the same URI.
RETRY_STATUSES = (502, 503, 504)
RETRIES = 10


@dataclass(frozen=True)
class TrinoResult:
    """Column names, Trino type signatures and typed rows of one query."""

    columns: list[str]
    types: list[dict[str, Any]]
    rows: list[list[Any]]

    def type_names(self) -> dict[str, str]:
        """Column name -> Trino's raw type name (`bigint`, `array`, `map`, `row`, ...)."""
        return {name: kind["rawType"] for name, kind in zip(self.columns, self.types, strict=True)}


@dataclass(frozen=True)
class TrinoConnection:
    """Where Trino answers, and the catalog and schema (Glue database) queries start in.

    The session runs in UTC, as Athena does.
    """

    url: str
    catalog: str
    schema: str
    user: str = USER

    def execute(self, sql: str) -> TrinoResult:
        """Run one statement to its end; a Trino error names itself and the SQL."""
        answer = self._request(
            urllib.request.Request(
                f"{self.url}/v1/statement",
                data=sql.encode("utf-8"),
                headers={
                    "X-Trino-User": self.user,
                    "X-Trino-Catalog": self.catalog,
                    "X-Trino-Schema": self.schema,
                    "X-Trino-Time-Zone": "UTC",
                    # Without it Trino rounds every timestamp to milliseconds (old clients).
                    "X-Trino-Client-Capabilities": "PARAMETRIC_DATETIME",
                    "Content-Type": "text/plain; charset=utf-8",
                },
                method="POST",
            )
        )
        columns: list[dict[str, Any]] | None = None
        data: list[list[Any]] = []
        while True:
            if "error" in answer:
                error = answer["error"]
                raise SluicewayError(
                    f"Trino refused the query ({error.get('errorName')}): "
                    f"{error.get('message')}\nSQL: {sql}"
                )
            columns = answer.get("columns") or columns
            data.extend(answer.get("data") or [])
            next_uri = answer.get("nextUri")
            if not next_uri:
                break
            answer = self._request(urllib.request.Request(next_uri, method="GET"))
        signatures = [column["typeSignature"] for column in columns or []]
        return TrinoResult(
            columns=[column["name"] for column in columns or []],
            types=signatures,
            rows=[
                [typed(value, kind) for value, kind in zip(row, signatures, strict=True)]
                for row in data
            ],
        )

    def frame(self, sql: str) -> pd.DataFrame:
        """The result as pandas, with the values `query` returns on the other backends."""
        return to_frame(self.execute(sql))

    def _request(self, request: urllib.request.Request) -> dict[str, Any]:
        for attempt in itertools.count(1):
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
                    result: dict[str, Any] = json.load(answer)
                    return result
            except urllib.error.HTTPError as error:
                if error.code not in RETRY_STATUSES or attempt >= RETRIES:
                    detail = error.read().decode("utf-8", "replace")[:500]
                    raise SluicewayError(
                        f"Trino at {self.url} answered {error.code}: {detail}"
                    ) from error
                time.sleep(0.1 * attempt)
        raise AssertionError("unreachable")


def to_frame(result: TrinoResult) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(result.rows, columns=result.columns, dtype=object)
    for name, kind in zip(result.columns, result.types, strict=True):
        if kind["rawType"].startswith("timestamp"):
            frame[name] = pd.to_datetime(frame[name], utc=kind["rawType"].endswith("zone"))
    return frame


# --- Trino's JSON values -> Python ------------------------------------------------------------


def _arguments(kind: Mapping[str, Any]) -> list[Any]:
    return [argument["value"] for argument in kind.get("arguments", [])]


def typed(value: Any, kind: Mapping[str, Any]) -> Any:
    """One value of Trino's JSON encoding as Python, following its type signature."""
    if value is None:
        return None
    raw = kind["rawType"]
    if raw == "decimal":
        return Decimal(value)
    if raw in ("double", "real"):
        return float(value)  # also "NaN" and "Infinity", which JSON has no numbers for
    if raw == "date":
        return date.fromisoformat(value)
    if raw.startswith("timestamp"):
        import pandas as pd

        # `2026-01-05 10:00:00.000 UTC`: the zone follows the last space.
        text, _, zone = value.rpartition(" ") if raw.endswith("zone") else (value, "", "")
        stamp = pd.Timestamp(text)
        return stamp.tz_localize(zone).tz_convert("UTC") if zone else stamp
    if raw == "array":
        (element,) = _arguments(kind)
        return [typed(item, element) for item in value]
    if raw == "map":
        key_type, value_type = _arguments(kind)
        return {typed(k, key_type): typed(v, value_type) for k, v in value.items()}
    if raw == "row":
        fields = _arguments(kind)
        values = value if isinstance(value, list) else list(value.values())
        return {
            (field.get("fieldName") or {}).get("name", f"field{index}"): typed(
                item, field["typeSignature"]
            )
            for index, (field, item) in enumerate(zip(fields, values, strict=True))
        }
    return value


# --- Trino behind the Athena backend's two awswrangler calls ---------------------------------


def athena_text(value: Any) -> Any:
    """A nested value as Athena's plain (non-CTAS) result gives it: `[a, b]`, `{k=v}`."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(athena_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={athena_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


def athena_client(trino: TrinoConnection) -> AthenaClient:
    """An AthenaClient whose queries run on Trino, in the Glue database Athena would use.

    Scalars come typed (as awswrangler types them); arrays, maps and rows come as Athena's
    text, for the Athena backend to parse as it parses Athena's.
    """
    results: dict[str, TrinoResult] = {}

    def read_sql_query(sql: str, database: str, **_options: Any) -> pd.DataFrame:
        connection = TrinoConnection(trino.url, trino.catalog, database, trino.user)
        result = connection.execute(sql)
        nested = {"array", "map", "row"}
        rows = [
            [
                athena_text(value) if kind["rawType"] in nested and value is not None else value
                for value, kind in zip(row, result.types, strict=True)
            ]
            for row in result.rows
        ]
        frame = to_frame(TrinoResult(result.columns, result.types, rows))
        execution = str(len(results) + 1)
        results[execution] = result
        object.__setattr__(frame, "query_metadata", {"QueryExecutionId": execution})
        return frame

    def get_query_columns_types(query_execution_id: str, **_options: Any) -> dict[str, str]:
        return results[query_execution_id].type_names()

    return AthenaClient(read_sql_query, get_query_columns_types)
