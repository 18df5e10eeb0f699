"""The engine in Spark with the financial handler: results, dead letters, re-runs."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from fixtures.processing_records import NO_RATE_CURRENCY
from sluiceway.processing import ProcessOptions, process_records
from sluiceway.processing.financial import (
    FX_RATE_MISSING,
    FinancialHandler,
    assess_with_spark,
)
from sluiceway.processing.partition import idempotency_key
from sluiceway.processing.run import idempotency_key_column
from sluiceway.processing.select import UnknownIngestError
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES, TRANSACTIONS

pytestmark = pytest.mark.integration

RESULT_COLUMNS = ["transaction_id", "result", "base_currency", "amount_base", "fee_base",
                  "risk_flags"]  # fmt: skip


def test_financial_run_matches_native_spark_and_accounts_for_every_record(
    spark, isolated_settings, seed
) -> None:
    settings = isolated_settings
    ingest_id = seed(spark, settings, 240, name="engine.csv")
    table = spark.table(settings.table(TRANSACTIONS))
    no_rate_rows = table.filter(F.col("currency") == NO_RATE_CURRENCY).collect()
    no_rate = {row.transaction_id for row in no_rate_rows}
    assert no_rate

    result = process_records(
        spark, settings, ProcessOptions(batch_size=40), source="/landing/engine.csv"
    )

    assert result.ingest_ids == (ingest_id,)
    assert result.reconciled, result.reconciliation
    assert result.metrics.records_ok == 240 - len(no_rate)
    assert result.metrics.records_failed == len(no_rate)
    assert result.metrics.batch_latencies_ms
    failures = spark.table(settings.table(PROCESSING_FAILURES)).collect()
    assert {f.transaction_id for f in failures} == no_rate
    assert {f.error_class for f in failures} == {FX_RATE_MISSING}
    assert all(f.attempts == 1 and f.batch_id.startswith("financial-w000-p") for f in failures)

    handler = FinancialHandler()
    expected = assess_with_spark(handler.bind(table, settings), handler.rates, handler.rules)
    actual = spark.table(settings.table(PROCESSED_TRANSACTIONS))
    assert_df_equality(
        actual.select(*RESULT_COLUMNS),
        expected.filter("error_class IS NULL").select(*RESULT_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    flagged = actual.select(F.explode("risk_flags").alias("flag")).distinct().collect()
    assert {row.flag for row in flagged} >= {"large_amount", "cross_border", "high_risk_mcc",
                                             "account_velocity"}  # fmt: skip

    keys = actual.select("transaction_id", "idempotency_key").limit(3).collect()
    for row in keys:
        assert row.idempotency_key == idempotency_key(ingest_id, row.transaction_id, "financial")

    again = process_records(spark, settings, ProcessOptions(batch_size=40), ingest_id=ingest_id)
    assert again.pending == 0
    assert again.reconciled
    assert actual.count() == 240 - len(no_rate)


def test_spark_and_python_derive_the_same_idempotency_key(spark) -> None:
    frame = spark.createDataFrame([("ing_1", "TX1")], "ingest_id string, transaction_id string")
    key = frame.select(idempotency_key_column("http").alias("key")).first().key
    assert key == idempotency_key("ing_1", "TX1", "http")


def test_unknown_source_names_the_file_and_what_to_do(spark, isolated_settings) -> None:
    with pytest.raises(UnknownIngestError, match=r"/nowhere\.csv: no completed ingest.*ingest"):
        process_records(spark, isolated_settings, source="/nowhere.csv")
