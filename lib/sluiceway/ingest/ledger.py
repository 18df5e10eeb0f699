"""The ingest ledger: one row per landing file, the commit marker of an ingest.

An ingest writes its ledger row as `started` before touching data and as `completed` (or
`failed`) last; a file whose row is `completed` is never ingested again, and any other row
means an earlier attempt died and its partial rows must be removed first. The status words
live in `sluiceway.statuses`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sluiceway.tables import DEFINITIONS, INGEST_LEDGER, REJECTED_RECORDS, TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings


@dataclass(frozen=True)
class LedgerEntry:
    """One row of `ingest_ledger`; field names are its column names."""

    ingest_id: str
    source_file: str
    sha256: str
    status: str
    started_at: datetime
    source_etag: str | None = None
    source_version: str | None = None
    file_bytes: int | None = None
    lines_read: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    accepted_lines: int | None = None
    rejected_lines: int | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_amount_by_currency: dict[str, Decimal] = field(default_factory=dict)
    accepted_count_by_currency: dict[str, int] = field(default_factory=dict)
    message: str | None = None
    manifest_checked: bool = False
    transactions_snapshot_id: int | None = None
    rejected_snapshot_id: int | None = None
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None


def _schema() -> str:
    return ", ".join(f"{name} {kind}" for name, kind in DEFINITIONS[INGEST_LEDGER].columns)


def find_entry(spark: SparkSession, settings: Settings, ingest_id: str) -> LedgerEntry | None:
    """The ledger row of an ingest id, if any."""
    rows = spark.table(settings.table(INGEST_LEDGER)).where(f"ingest_id = '{ingest_id}'").collect()
    if not rows:
        return None
    values = rows[0].asDict()
    names = {f.name for f in dataclasses.fields(LedgerEntry)}
    return LedgerEntry(**{k: v for k, v in values.items() if k in names})


def record(
    spark: SparkSession, settings: Settings, entry: LedgerEntry, is_new: bool = False
) -> None:
    """Insert or replace the ledger row of this ingest id: one row per ingest id.

    A new row is a plain append (one cheap commit); replacing a row needs MERGE.
    """
    columns = [name for name, _ in DEFINITIONS[INGEST_LEDGER].columns]
    row = dataclasses.asdict(entry)
    update = spark.createDataFrame([tuple(row[name] for name in columns)], _schema())
    if is_new:
        update.writeTo(settings.table(INGEST_LEDGER)).append()
        return
    view = f"ledger_update_{entry.ingest_id}"
    update.createOrReplaceTempView(view)
    spark.sql(
        f"MERGE INTO {settings.table(INGEST_LEDGER)} AS t USING {view} AS s "
        "ON t.ingest_id = s.ingest_id "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    spark.catalog.dropTempView(view)


def remove_ingest_rows(spark: SparkSession, settings: Settings, ingest_id: str) -> None:
    """Delete what an unfinished or failed attempt of this ingest wrote (under the lease)."""
    for name in (TRANSACTIONS, REJECTED_RECORDS):
        spark.sql(f"DELETE FROM {settings.table(name)} WHERE ingest_id = '{ingest_id}'")
