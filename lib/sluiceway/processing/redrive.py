"""Dead letters back to pending: `sluiceway redrive [--ingest-id ID] [--error-class NAME]`.

A record is pending exactly when it has neither a result nor a dead letter, so redriving is
deleting the chosen dead letters: the next `sluiceway process` (of that ingest, or of
everything) picks the records up again, with the same idempotency keys. Running it twice is
a no-op: the second run finds nothing to delete and commits nothing. The deleted rows stay
readable in the table's earlier snapshots until snapshot expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluiceway.errors import ConfigurationError
from sluiceway.lease import writer_lease
from sluiceway.logs import get_logger, log_event
from sluiceway.tables import PROCESSING_FAILURES, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)
# Ingest ids and error classes are identifiers; anything else is a typo or an injection.
IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class RedriveResult:
    """How many dead letters were put back to pending, and which ingests they belong to."""

    redriven: int
    ingest_ids: tuple[str, ...]


def redrive(
    spark: SparkSession,
    settings: Settings,
    ingest_id: str | None = None,
    error_class: str | None = None,
) -> RedriveResult:
    """Delete the matching dead letters (all of them when neither filter is given)."""
    conditions = []
    for option, column, value in (
        ("--ingest-id", "ingest_id", ingest_id),
        ("--error-class", "error_class", error_class),
    ):
        if value is None:
            continue
        if not IDENTIFIER.match(value):
            raise ConfigurationError(
                f"{option} {value!r}: only letters, digits and _ . : - are allowed; "
                f"copy the value from {settings.table(PROCESSING_FAILURES)}"
            )
        conditions.append(f"{column} = '{value}'")
    where = " AND ".join(conditions) or "TRUE"
    # A writer like process: never in the middle of a run that is choosing pending records.
    with writer_lease(settings, "redrive") as fence:
        ensure_tables(spark, settings, (PROCESSING_FAILURES,))
        table = settings.table(PROCESSING_FAILURES)
        counts = spark.sql(
            f"SELECT ingest_id, count(*) AS dead FROM {table} WHERE {where} GROUP BY ingest_id"
        ).collect()
        result = RedriveResult(
            redriven=sum(row.dead for row in counts),
            ingest_ids=tuple(sorted(row.ingest_id for row in counts)),
        )
        if result.redriven:
            fence.check(f"the redrive of {result.redriven} dead letters")
            spark.sql(f"DELETE FROM {table} WHERE {where}")
    log_event(
        LOGGER, "dead letters redriven", redriven=result.redriven,
        ingest_ids=list(result.ingest_ids), ingest_id=ingest_id, error_class=error_class,
    )  # fmt: skip
    return result
