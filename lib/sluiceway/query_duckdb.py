"""The local backend of the analyst query: DuckDB over the Iceberg tables of a local warehouse.

Why DuckDB and not Spark SQL: it answers in well under a second with no JVM, and as a
second, independent Iceberg reader it also checks what Spark wrote. Its extensions come from
PyPI packages and are loaded from their folders (no downloads). Athena's Iceberg metadata
tables (`"transactions$snapshots"`, `"transactions$history"`) come from pyiceberg, which has
the same columns. duckdb and pyiceberg are imported here only, so the Athena path needs only
the `aws` extra.

On the local AWS stack (profile `local-aws`, docs/adr/0009-local-aws-stack.md) there is no
Athena: the same transpiled SQL runs here over the tables of the Glue catalog, which pyiceberg
loads (Glue for the current metadata, S3 for the files) and hands to DuckDB as Arrow.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.errors import ConfigurationError, SluicewayError
from sluiceway.locations import is_s3
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

# Athena's Iceberg metadata tables that the local backend provides (`"<table>$<kind>"`).
METADATA_TABLES = ("snapshots", "history")


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


def existing_tables(settings: Settings) -> set[str]:
    """The sluiceway tables that exist yet: in the warehouse folder, or in the Glue catalog."""
    if is_s3(settings.warehouse):
        from pyiceberg.exceptions import NoSuchNamespaceError

        try:
            listed = _glue_catalog().list_tables(settings.namespace)
        except NoSuchNamespaceError:  # no Glue database yet: no ingest ran
            return set()
        return {identifier[-1] for identifier in listed} & set(DEFINITIONS)
    return {name for name in DEFINITIONS if current_metadata(settings, name) is not None}


def register_tables(
    connection: duckdb.DuckDBPyConnection,
    settings: Settings,
    snapshots: Mapping[str, int] | None = None,
) -> list[str]:
    """Expose every existing sluiceway table as a view of the same name (pinned if asked)."""
    if is_s3(settings.warehouse):
        return _register_catalog_tables(connection, settings, snapshots)
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
    if is_s3(settings.warehouse):
        if table not in existing_tables(settings):
            raise SluicewayError(f'"{name}": no table {table} in {settings.warehouse} yet')
        inspect = _catalog_table(settings, table).inspect
    else:
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


def run_query(
    settings: Settings,
    sql: str,
    snapshots: Mapping[str, int] | None = None,
    metadata_tables: Iterable[str] = (),
) -> pd.DataFrame:
    """Run DuckDB SQL over the local tables (optionally pinned to snapshots).

    Analysts use `query` (Athena's dialect); tests use this as an independent reader. An
    s3:// warehouse is read through its Glue catalog (the local AWS stack; on AWS, Athena).
    """
    import duckdb

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


# --- an s3:// warehouse through its Glue catalog (the local AWS stack) -----------------------


def _register_catalog_tables(
    connection: duckdb.DuckDBPyConnection,
    settings: Settings,
    snapshots: Mapping[str, int] | None,
) -> list[str]:
    """The Glue catalog's sluiceway tables as DuckDB views of their rows (pinned if asked)."""
    registered = []
    for name in sorted(existing_tables(settings), key=list(DEFINITIONS).index):
        table = _catalog_table(settings, name)
        pin = (snapshots or {}).get(name)
        connection.register(name, _table_rows(table.metadata_location, pin))
        registered.append(name)
    return registered


def _catalog_table(settings: Settings, name: str) -> Table:
    return _glue_catalog().load_table((settings.namespace, name))


@functools.lru_cache(maxsize=8)
def _table_rows(metadata_location: str, snapshot_id: int | None) -> pa.Table:
    """All rows of a table version; a metadata file never changes, so a report's many queries
    read each table once."""
    from pyiceberg.table import StaticTable

    table = StaticTable.from_metadata(metadata_location, {"py-io-impl": _S3_FILE_IO})
    return table.scan(snapshot_id=snapshot_id).to_arrow()


@functools.cache
def _glue_catalog() -> Catalog:
    """pyiceberg's Glue catalog; its boto3 client finds Glue, the region and the credentials
    through the standard AWS chain (AWS_ENDPOINT_URL_GLUE on the local stack)."""
    from pyiceberg.catalog import load_catalog

    return load_catalog("glue", type="glue", **{"py-io-impl": _S3_FILE_IO})


# pyiceberg opens s3:// through this FileIO (a module of its own: it imports pyiceberg).
_S3_FILE_IO = "sluiceway.pyiceberg_io.StandardS3FileIO"
