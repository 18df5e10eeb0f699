"""Analyst SQL is Athena's (Trino) dialect; this is where it is rewritten, never authored.

Two rewrites: pinning tables to an ingest's snapshots in Trino (`FOR VERSION AS OF`, for
Athena) and transpiling to DuckDB with sqlglot (for a local warehouse).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sluiceway.errors import SluicewayError

# A query's own leading comments and WITH [RECURSIVE]: the pins join its list of named queries.
_LEADING_WITH = re.compile(
    r"^((?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*)WITH(\s+RECURSIVE)?\s+", re.IGNORECASE | re.DOTALL
)


def pin_athena_sql(sql: str, snapshots: Mapping[str, int], database: str) -> str:
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


def to_duckdb(sql: str, namespace: str) -> tuple[str, list[str]]:
    """Athena (Trino) SQL as DuckDB SQL, and the Iceberg metadata tables it reads.

    A table qualified with the namespace (`sluiceway_dev.transactions`, as on Athena) is
    read unqualified; `"<table>$snapshots"`-style names are returned for the backend to provide.
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="trino")
    except sqlglot.errors.ParseError as error:
        raise SluicewayError(f"not valid Athena (Trino) SQL: {error}") from error
    metadata = set()
    for table in tree.find_all(exp.Table):
        if table.db == namespace:
            table.set("db", None)
        if "$" in table.name:
            metadata.add(table.name)
    return tree.sql(dialect="duckdb"), sorted(metadata)
