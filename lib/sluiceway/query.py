"""Plain SQL over the local Iceberg tables with DuckDB, an engine independent of Spark.

Why DuckDB and not Spark SQL for `sluiceway query`: it answers in well under a second with
no JVM, and being a second, independent Iceberg reader it also checks what Spark wrote.
The extensions come from PyPI packages and are loaded from their folders (no downloads).

`query(settings, sql, ingest_id=...)` is the one helper analysts use: the same SQL runs on
Athena (awswrangler, workgroup and Glue database from Settings) when the warehouse is on S3
and on DuckDB locally; pinning an ingest reads `transactions` and `rejected_records` at the
snapshots that ingest committed (its ledger row), so an analysis can be reproduced later.
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


# The ledger columns holding the snapshot each pinned table had right after an ingest.
PINNED_SNAPSHOT_COLUMNS = {
    "transactions": "transactions_snapshot_id",
    "rejected_records": "rejected_snapshot_id",
}


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
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM iceberg_scan('{metadata}'{option})"
            )
            registered.append(name)
    return registered


def ingest_snapshots(settings: Settings, ingest_id: str) -> dict[str, int]:
    """The table snapshots an ingest committed, from its completed ledger row."""
    columns = ", ".join(PINNED_SNAPSHOT_COLUMNS.values())
    frame = run_query(
        settings,
        f"SELECT {columns} FROM ingest_ledger WHERE ingest_id = '{_literal(ingest_id)}' "
        "AND status = 'completed' ORDER BY finished_at DESC LIMIT 1",
    )
    if frame.empty:
        raise SluicewayError(
            f"no completed ingest {ingest_id!r} in ingest_ledger of {settings.warehouse}; "
            'list them with `sluiceway query "SELECT ingest_id, status FROM ingest_ledger"`'
        )
    row = frame.iloc[0]
    return {
        table: int(row[column])
        for table, column in PINNED_SNAPSHOT_COLUMNS.items()
        if row[column] is not None and row[column] == row[column]
    }


def query(settings: Settings, sql: str, ingest_id: str | None = None):  # -> pandas.DataFrame
    """Run SQL where the tables are: Athena for an s3:// warehouse, DuckDB for a local one.

    With `ingest_id`, `transactions` and `rejected_records` are read as of that ingest.
    """
    if settings.warehouse.startswith("s3://"):
        return athena_query(settings, sql, ingest_id)
    if ingest_id is None:
        return run_query(settings, sql)
    return run_query(settings, sql, ingest_snapshots(settings, ingest_id))


def athena_query(settings: Settings, sql: str, ingest_id: str | None = None):
    """Run SQL on Athena with the workgroup and Glue database (namespace) from Settings."""
    import awswrangler as wr

    if ingest_id is not None:
        frame = wr.athena.read_sql_query(
            f"SELECT {', '.join(PINNED_SNAPSHOT_COLUMNS.values())} FROM ingest_ledger "
            f"WHERE ingest_id = '{_literal(ingest_id)}' AND status = 'completed'",
            database=settings.namespace,
            workgroup=settings.athena_workgroup,
            ctas_approach=False,
        )
        if frame.empty:
            raise SluicewayError(f"no completed ingest {ingest_id!r} in ingest_ledger on Athena")
        sql = pin_athena_sql(
            sql,
            {t: int(frame.iloc[0][c]) for t, c in PINNED_SNAPSHOT_COLUMNS.items()},
            settings.namespace,
        )
    return wr.athena.read_sql_query(
        sql, database=settings.namespace, workgroup=settings.athena_workgroup, ctas_approach=False
    )


def pin_athena_sql(sql: str, snapshots: dict[str, int], database: str) -> str:
    """Wrap the query so each pinned table name reads `FOR VERSION AS OF` its snapshot.

    The CTE body names the database so it reads the table, not the CTE of the same name.
    """
    views = ", ".join(
        f'{name} AS (SELECT * FROM "{database}".{name} FOR VERSION AS OF {snapshot})'
        for name, snapshot in snapshots.items()
    )
    return f"WITH {views} {sql}" if views else sql


def _literal(value: str) -> str:
    return value.replace("'", "''")


def run_query(
    settings: Settings, sql: str, snapshots: dict[str, int] | None = None
):  # -> pandas.DataFrame
    """Run SQL over the local tables (optionally pinned to snapshots) as a pandas DataFrame."""
    if settings.warehouse.startswith("s3://"):
        raise ConfigurationError(
            "sluiceway query reads a local warehouse; on AWS use Athena (the query helper)"
        )
    connection = connect()
    tables = register_tables(connection, settings, snapshots)
    try:
        return connection.execute(sql).fetchdf()
    except duckdb.Error as error:
        known = ", ".join(tables) or "none yet (run `sluiceway ingest` first)"
        raise SluicewayError(
            f"query failed: {error}. Tables in {settings.warehouse}: {known}"
        ) from error
