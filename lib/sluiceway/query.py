"""Analyst SQL, written once in Athena's dialect (Trino), run where the tables are.

`query(settings, sql, ingest_id=...)` is the one helper the notebooks, `sluiceway report` and
`sluiceway query` use, and its SQL is always Athena's (Trino) dialect:

- s3:// warehouse: Athena through awswrangler (`query_athena`), in the workgroup and Glue
  database (the namespace) from Settings.
- local warehouse: sqlglot transpiles the same text (`query_dialect`) for DuckDB, which reads
  the Iceberg tables (`query_duckdb`).

Both backends return the same Python types: DECIMAL as `decimal.Decimal` (money is never a
binary float), arrays as lists, maps and rows as dicts. Pinning an ingest reads `transactions`
and `rejected_records` at the snapshots that ingest committed (its ledger row), so an analysis
can be reproduced later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SluicewayError
from sluiceway.locations import is_s3
from sluiceway.query_athena import AthenaClient, athena_query
from sluiceway.query_dialect import to_duckdb
from sluiceway.query_duckdb import existing_tables as duckdb_tables
from sluiceway.query_duckdb import run_query
from sluiceway.settings import ENV_PREFIX, Settings, load_settings
from sluiceway.statuses import COMPLETED
from sluiceway.tables import DEFINITIONS

if TYPE_CHECKING:
    import pandas as pd

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


def is_athena(settings: Settings) -> bool:
    """Tables on S3 are read through Athena; a local warehouse through DuckDB.

    The local AWS stack has no Athena (moto answers its API but runs no SQL): there DuckDB
    reads the Glue catalog's tables (`query_duckdb`), with the same transpiled SQL.
    """
    return is_s3(settings.warehouse) and settings.profile != "local-aws"


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
        pins = ingest_snapshots(settings, ingest_id, athena) if ingest_id is not None else None
        return athena_query(settings, sql, pins, athena)
    # Transpiled first, so SQL that is not Athena's fails before anything is read.
    duckdb_sql, metadata_tables = to_duckdb(sql, settings.namespace)
    pins = ingest_snapshots(settings, ingest_id) if ingest_id is not None else None
    return run_query(settings, duckdb_sql, pins, metadata_tables)


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
    return duckdb_tables(settings)


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
