"""Plain SQL over the local Iceberg tables with DuckDB, an engine independent of Spark.

Why DuckDB and not Spark SQL for `sluiceway query`: it answers in well under a second with
no JVM, and being a second, independent Iceberg reader it also checks what Spark wrote.
The extensions come from PyPI packages and are loaded from their folders (no downloads).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from sluiceway.errors import ConfigurationError, SluicewayError
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS


def _extension(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigurationError(f"{package} is not installed; run `make venv`")
    found = sorted(Path(spec.origin).parent.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise ConfigurationError(f"no {name}.duckdb_extension inside {package}")
    return found[-1]


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the avro and iceberg extensions loaded, auto-install off."""
    connection = duckdb.connect(config={"autoinstall_known_extensions": "false"})
    connection.execute(f"LOAD '{_extension('duckdb_extension_avro', 'avro')}'")
    connection.execute(f"LOAD '{_extension('duckdb_extension_iceberg', 'iceberg')}'")
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


def register_tables(connection: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Expose every existing sluiceway table as a view of the same name."""
    registered = []
    for name in DEFINITIONS:
        metadata = current_metadata(settings, name)
        if metadata is not None:
            connection.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM iceberg_scan('{metadata}')"
            )
            registered.append(name)
    return registered


def run_query(settings: Settings, sql: str):  # -> pandas.DataFrame
    """Run SQL over the local tables and return a pandas DataFrame."""
    if settings.warehouse.startswith("s3://"):
        raise ConfigurationError(
            "sluiceway query reads a local warehouse; on AWS use Athena (the query helper)"
        )
    connection = connect()
    tables = register_tables(connection, settings)
    try:
        return connection.execute(sql).fetchdf()
    except duckdb.Error as error:
        known = ", ".join(tables) or "none yet (run `sluiceway ingest` first)"
        raise SluicewayError(
            f"query failed: {error}. Tables in {settings.warehouse}: {known}"
        ) from error
