"""A day's processing reads only that day: earlier days' files are never opened.

The proof is physical: after day 1 is processed, every data file it left behind (its
transactions, results and dead letters) is deleted from disk. Processing day 3 must still
succeed and reconcile, which it can only do if pending selection, the velocity counts and the
reconciliation (which lists outcome files by their ingest_id bounds) all prune by the ingest's
event days and ingest id.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest

from sluiceway.processing import ProcessOptions, process_records
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES, TRANSACTIONS

pytestmark = pytest.mark.integration

RECORDS = 80
OUTCOME_TABLES = (TRANSACTIONS, PROCESSED_TRANSACTIONS, PROCESSING_FAILURES)


def data_files(spark, settings) -> list[str]:
    files = []
    for table in OUTCOME_TABLES:
        rows = spark.sql(f"SELECT file_path FROM {settings.table(table)}.files").collect()
        files.extend(urlparse(row.file_path).path or row.file_path for row in rows)
    return files


def test_processing_day_3_never_opens_a_file_of_day_1(spark, isolated_settings, seed) -> None:
    settings = isolated_settings
    options = ProcessOptions(batch_size=20)
    day1 = seed(spark, settings, RECORDS, name="day1.csv", every_no_rate=10,
                start=datetime(2026, 11, 20, 8, 0, tzinfo=UTC))  # fmt: skip
    first = process_records(spark, settings, options, ingest_id=day1)
    assert first.reconciled and first.metrics.records_failed == RECORDS // 10
    day1_files = data_files(spark, settings)
    assert len(day1_files) >= 3

    day3 = seed(spark, settings, RECORDS, name="day3.csv", every_no_rate=10,
                start=datetime(2026, 11, 22, 8, 0, tzinfo=UTC))  # fmt: skip
    for path in day1_files:
        os.remove(path)

    third = process_records(spark, settings, options, ingest_id=day3)

    assert third.pending == RECORDS
    assert third.reconciled, third.reconciliation
    [check] = third.reconciliation
    assert (check.processed, check.failed, check.duplicates) == (RECORDS - 8, 8, 0)
