"""Analyst SQL, written once in Athena's dialect (Trino), run where the tables are.

`query(settings, sql, ingest_id=...)` is the one helper the notebooks, `sluiceway report` and
`sluiceway query` use, and its SQL is always Athena's (Trino) dialect:

- s3:// warehouse: Athena through awswrangler, in the workgroup and Glue database (the
  namespace) from Settings.
- local warehouse: sqlglot transpiles the same text to DuckDB, which reads the Iceberg tables.
  Athena's Iceberg metadata tables (`"transactions$snapshots"`, `"transactions$history"`) are
  provided by pyiceberg, which has the same columns.

Why DuckDB locally and not Spark SQL: it answers in well under a second with no JVM, and as a
second, independent Iceberg reader it also checks what Spark wrote. Its extensions come from
PyPI packages and are loaded from their folders (no downloads). duckdb, sqlglot and pyiceberg
are imported by the local backend only, so the Athena path needs only the `aws` extra.

Both backends return the same Python types: DECIMAL as `decimal.Decimal` (money is never a
binary float), arrays as lists, maps and rows as dicts. Pinning an ingest reads `transactions`
and `rejected_records` at the snapshots that ingest committed (its ledger row), so an analysis
can be reproduced later.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluiceway.errors import ConfigurationError, SluicewayError
from sluiceway.locations import is_s3
from sluiceway.settings import ENV_PREFIX, Settings, load_settings
from sluiceway.statuses import COMPLETED
from sluiceway.tables import DEFINITIONS

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

# The ledger columns holding the snapshot each pinned table had right after an ingest.
PINNED_SNAPSHOT_COLUMNS = {
    "transactions": "transactions_snapshot_id",
    "rejected_records": "rejected_snapshot_id",
}

# What infra/cloudformation/storage.yaml creates with its default EnvironmentName `dev`: the
# workgroup `sluiceway-${EnvironmentName}` and the Glue database `sluiceway_${EnvironmentName}`
# (the tables' namespace on AWS). Settings' own defaults name no deployed resource.
STACK_WORKGROUP = "sluiceway-dev"
STACK_DATABASE = "sluiceway_dev"

# Athena's Iceberg metadata tables that the local backend provides (`"<table>$<kind>"`).
METADATA_TABLES = ("snapshots", "history")

QUERY_FORMATS = ("table", "csv", "json")


def is_athena(settings: Settings) -> bool:
    """Tables on S3 are read through Athena; a local warehouse through DuckDB."""
    return is_s3(settings.warehouse)


def analyst_settings(environ: Mapping[str, str], **parameters: Any) -> Settings:
    """Settings for notebooks and the analyst commands.

    Precedence defaults < profile < SLUICEWAY_* environment < parameters (None = not given).
    On an s3:// warehouse a workgroup or database given nowhere is the storage stack's, so a
    notebook pointed at the deployed warehouse works without further settings.
    """
    settings = load_settings(environ=environ, arguments=parameters)
    if not is_athena(settings):
        return settings

    def given(name: str) -> bool:
        return parameters.get(name) is not None or f"{ENV_PREFIX}{name.upper()}" in environ

    stack = {"athena_workgroup": STACK_WORKGROUP, "namespace": STACK_DATABASE}
    return settings.with_overrides({k: v for k, v in stack.items() if not given(k)})


def query(
    settings: Settings,
    sql: str,
    ingest_id: str | None = None,
    athena: AthenaClient | None = None,
) -> pd.DataFrame:
    """Run Athena (Trino) SQL where the tables are: Athena for s3://, DuckDB for a local folder.

    With `ingest_id`, `transactions` and `rejected_records` are read as of that ingest.
    """
    if is_athena(settings):
        return athena_query(settings, sql, ingest_id, athena)
    return local_query(settings, sql, ingest_id)


def existing_tables(settings: Settings, athena: AthenaClient | None = None) -> set[str]:
    """The sluiceway tables that exist yet (a fresh warehouse has none)."""
    if is_athena(settings):
        frame = athena_query(
            settings,
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{_literal(settings.namespace)}'",
            athena=athena,
        )
        return {str(name) for name in frame.iloc[:, 0]} & set(DEFINITIONS)
    return {name for name in DEFINITIONS if current_metadata(settings, name) is not None}


def ingest_snapshots(
    settings: Settings, ingest_id: str, athena: AthenaClient | None = None
) -> dict[str, int]:
    """The table snapshots an ingest committed, from its completed ledger row."""
    frame = query(
        settings,
        f"SELECT {', '.join(PINNED_SNAPSHOT_COLUMNS.values())} FROM ingest_ledger "
        f"WHERE ingest_id = '{_literal(ingest_id)}' AND status = '{COMPLETED}' "
        "ORDER BY finished_at DESC LIMIT 1",
        athena=athena,
    )
    if frame.empty:
        raise SluicewayError(
            f"no completed ingest {ingest_id!r} in ingest_ledger of {settings.warehouse}; "
            'list them with `sluiceway query "SELECT ingest_id, status FROM ingest_ledger"`'
        )
    import pandas as pd

    row = frame.iloc[0]
    return {
        table: int(row[column])
        for table, column in PINNED_SNAPSHOT_COLUMNS.items()
        if pd.notna(row[column])  # None, NaN locally; pd.NA from Athena's nullable Int64
    }


def _literal(value: str) -> str:
    return value.replace("'", "''")


# --- Athena -------------------------------------------------------------------------------


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
    ingest_id: str | None = None,
    athena: AthenaClient | None = None,
) -> pd.DataFrame:
    """Run SQL on Athena in the workgroup and Glue database (namespace) from Settings.

    `ctas_approach=False`: the CTAS approach needs rights to create and drop Glue tables, which
    analysts do not get, and cannot return `timestamp with time zone` (`$snapshots`); Athena's
    plain result is text for arrays and maps, so they are parsed here (`parse_athena_value`).
    """
    client = athena or AthenaClient.from_awswrangler(settings.aws_region)
    if ingest_id is not None:
        pins = ingest_snapshots(settings, ingest_id, client)
        sql = pin_athena_sql(sql, pins, settings.namespace)
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


# A query's own leading comments and WITH [RECURSIVE]: the pins join its list of named queries.
_LEADING_WITH = re.compile(
    r"^((?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*)WITH(\s+RECURSIVE)?\s+", re.IGNORECASE | re.DOTALL
)


def pin_athena_sql(sql: str, snapshots: dict[str, int], database: str) -> str:
    """Make each pinned table name read `FOR VERSION AS OF` its snapshot, via named queries.

    The pin's body names the database so it reads the table, not itself; a query that starts
    with WITH gets the pins at the front of its own list (Trino allows only one WITH).
    """
    views = ", ".join(
        f'{name} AS (SELECT * FROM "{database}".{name} FOR VERSION AS OF {int(snapshot)})'
        for name, snapshot in snapshots.items()
    )
    if not views:
        return sql
    match = _LEADING_WITH.match(sql)
    if match is None:
        return f"WITH {views} {sql}"
    comments, recursive = match.group(1), match.group(2) or ""
    return f"{comments}WITH{recursive} {views}, {sql[match.end() :]}"


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


# --- Local: DuckDB over the Iceberg tables --------------------------------------------------


def _extension(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"{package} is not installed; run `make venv`")
    found = sorted(Path(spec.origin).parent.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise ConfigurationError(f"no {name}.duckdb_extension inside {package}")
    return found[-1]


@functools.cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process with the extensions loaded: loading costs ~0.5 s,
    which every query of a notebook or report would otherwise pay."""
    import duckdb

    database = duckdb.connect(config={"autoinstall_known_extensions": "false"})
    database.execute(f"LOAD '{_extension('duckdb_extension_avro', 'avro')}'")
    database.execute(f"LOAD '{_extension('duckdb_extension_iceberg', 'iceberg')}'")
    return database


def connect() -> duckdb.DuckDBPyConnection:
    """A connection of its own (its own temporary views) with avro and iceberg loaded, UTC."""
    connection = _database().cursor()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def table_location(settings: Settings, name: str) -> Path:
    """Folder of a table in the local (Hadoop-type) warehouse."""
    return Path(settings.warehouse).resolve() / settings.namespace / name


def current_metadata(settings: Settings, name: str) -> Path | None:
    """The table's current metadata file, from the catalog's version hint; None if absent."""
    metadata = table_location(settings, name) / "metadata"
    hint = metadata / "version-hint.text"
    if not hint.exists():
        return None
    return metadata / f"v{hint.read_text().strip()}.metadata.json"


def register_tables(
    connection: duckdb.DuckDBPyConnection,
    settings: Settings,
    snapshots: dict[str, int] | None = None,
) -> list[str]:
    """Expose every existing sluiceway table as a view of the same name (pinned if asked)."""
    registered = []
    for name in DEFINITIONS:
        metadata = current_metadata(settings, name)
        if metadata is not None:
            pin = (snapshots or {}).get(name)
            option = f", snapshot_from_id => {int(pin)}" if pin is not None else ""
            connection.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS "
                f"SELECT * FROM iceberg_scan('{metadata}'{option})"
            )
            registered.append(name)
    return registered


def metadata_table(settings: Settings, name: str) -> pa.Table:
    """Athena's `"<table>$snapshots"` / `"<table>$history"` of a local table, via pyiceberg.

    pyiceberg's inspect tables follow the Iceberg spec as Trino's do (same column names and
    types), so a metadata query has one text on both backends.
    """
    import pyarrow as pa
    from pyiceberg.table import StaticTable

    table, _, kind = name.partition("$")
    if kind not in METADATA_TABLES:
        supported = ", ".join(f'"{table}${k}"' for k in METADATA_TABLES)
        raise SluicewayError(f'"{name}": the local backend provides {supported}')
    metadata = current_metadata(settings, table)
    if metadata is None:
        raise SluicewayError(f'"{name}": no table {table} in {settings.warehouse} yet')
    inspect = StaticTable.from_metadata(str(metadata)).inspect
    result = inspect.snapshots() if kind == "snapshots" else inspect.history()
    # Athena gives these as `timestamp with time zone`; pyiceberg's are UTC without a zone.
    return result.cast(
        pa.schema(
            field.with_type(pa.timestamp(field.type.unit, "UTC"))
            if pa.types.is_timestamp(field.type)
            else field
            for field in result.schema
        )
    )


def local_query(settings: Settings, sql: str, ingest_id: str | None = None) -> pd.DataFrame:
    """Run Athena (Trino) SQL over the local tables: sqlglot transpiles it for DuckDB."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="trino")
    except sqlglot.errors.ParseError as error:
        raise SluicewayError(f"not valid Athena (Trino) SQL: {error}") from error
    metadata = set()
    for table in tree.find_all(exp.Table):
        if table.db == settings.namespace:  # `sluiceway_dev.transactions`, as on Athena
            table.set("db", None)
        if "$" in table.name:
            metadata.add(table.name)
    snapshots = ingest_snapshots(settings, ingest_id) if ingest_id is not None else None
    return run_query(settings, tree.sql(dialect="duckdb"), snapshots, sorted(metadata))


def run_query(
    settings: Settings,
    sql: str,
    snapshots: dict[str, int] | None = None,
    metadata_tables: Iterable[str] = (),
) -> pd.DataFrame:
    """Run DuckDB SQL over the local tables (optionally pinned to snapshots).

    Analysts use `query` (Athena's dialect); tests use this as an independent reader.
    """
    import duckdb

    if is_athena(settings):
        raise ConfigurationError(
            "this reads a local warehouse with DuckDB; for s3:// use `query` (Athena)"
        )
    connection = connect()
    tables = register_tables(connection, settings, snapshots)
    for name in metadata_tables:
        connection.register(name, metadata_table(settings, name))
    try:
        return arrow_to_frame(connection.execute(sql).to_arrow_table())
    except duckdb.Error as error:
        known = ", ".join(tables) or "none yet (run `sluiceway ingest` first)"
        raise SluicewayError(
            f"query failed: {error}. Tables in {settings.warehouse}: {known}"
        ) from error
    finally:
        connection.close()


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """pandas with exact decimals, lists and dicts, as the Athena backend returns them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(table.schema):
        # DuckDB sums integers as HUGEINT, which Arrow carries as decimal(38, 0); Trino's
        # SUM of integers is a bigint.
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            try:
                column = pc.cast(table.column(index), pa.int64())
            except pa.ArrowInvalid:
                continue
            table = table.set_column(index, field.name, column)
    frame = table.to_pandas(maps_as_pydicts="strict")
    for field in table.schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            frame[field.name] = [None if v is None else list(v) for v in frame[field.name]]
    return frame


# --- Printing (`sluiceway query`) ------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A cell as printable text: decimals and floats positional, never `12.1` or `5.2e+12`."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and math.isfinite(value):
        return _float_text(value)
    return value


def _float_text(value: float) -> str:
    import numpy as np

    return np.format_float_positional(value, trim="-")


def _json_value(value: Any) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else "null"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, bool | int | str):
        return json.dumps(value)
    return json.dumps(str(value))


def format_frame(frame: pd.DataFrame, output: str) -> str:
    """A query result as a text table, CSV or JSON records, with exact decimals in each.

    In JSON a DECIMAL is a number written with all its digits (`12.10`); read it with a parser
    that keeps decimals (e.g. Python's `json.loads(text, parse_float=decimal.Decimal)`).
    """
    if output == "json":
        rows = (
            "{" + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in row.items()) + "}"
            for row in frame.to_dict(orient="records")
        )
        return "[" + ", ".join(rows) + "]\n"
    plain = frame.map(_plain) if len(frame) else frame
    if output == "csv":
        return plain.to_csv(index=False)
    if output == "table":
        return (plain.to_string(index=False) if len(frame) else "(no rows)") + "\n"
    raise ConfigurationError(f"unknown format {output!r}; choose one of {', '.join(QUERY_FORMATS)}")
