"""The velocity counts in one windowed pass, which is also the engine's layout: same counts as
the window-then-join definition they replaced, one shuffle, waves cut from one layout.

The reference below is the definition the financial handler used until 2026-12: a window by
account over the completed ingests' transactions of the span, joined back to the records on
(ingest_id, transaction_id). It shuffled the day three times and then once more for the
engine's layout.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sluiceway.processing import ProcessOptions, process_records
from sluiceway.processing.commit import WAVE_PROPERTY
from sluiceway.processing.financial import (
    RECENT_COUNT,
    FinancialHandler,
    FinancialRules,
    assess_with_spark,
    with_recent_counts,
)
from sluiceway.processing.run import lay_out
from sluiceway.statuses import COMPLETED, STARTED
from sluiceway.tables import (
    DEFINITIONS,
    INGEST_LEDGER,
    PROCESSED_TRANSACTIONS,
    PROCESSING_FAILURES,
    TRANSACTIONS,
    ensure_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

pytestmark = pytest.mark.integration

RULES = FinancialRules()
START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
# Offsets that hit the edges: equal times, exactly the window apart, one second inside and
# outside it, across midnight.
EDGES = (0, 0, 1, 1800, 3599, 3600, 3600, 3601, 7200, 7201, 10_799, 10_800)


def _schema(name: str) -> str:
    return ", ".join(f"{column} {kind}" for column, kind in DEFINITIONS[name].columns)


def _write(spark: SparkSession, settings: Settings, ingest_id: str, status: str,
           records: list[tuple[str, str, datetime]]) -> None:  # fmt: skip
    rows = []
    for transaction_id, account, event_time in records:
        row: dict[str, Any] = {
            "transaction_id": transaction_id, "account_id": account, "amount": Decimal("1.00"),
            "currency": "EUR", "event_time": event_time, "status": "settled",
            "channel": "card_present", "mcc": "5411", "country": "DE", "ingest_id": ingest_id,
            "source_file": f"/landing/{ingest_id}.csv",
        }  # fmt: skip
        rows.append(tuple(row.get(column) for column, _ in DEFINITIONS[TRANSACTIONS].columns))
    spark.createDataFrame(rows, _schema(TRANSACTIONS)).writeTo(
        settings.table(TRANSACTIONS)
    ).append()
    ledger = {column: None for column, _ in DEFINITIONS[INGEST_LEDGER].columns}
    ledger.update(ingest_id=ingest_id, source_file=f"/landing/{ingest_id}.csv", status=status)
    spark.createDataFrame([tuple(ledger.values())], _schema(INGEST_LEDGER)).writeTo(
        settings.table(INGEST_LEDGER)
    ).append()


def seeded_ingests(spark: SparkSession, settings: Settings) -> None:
    """Three completed ingests and an unfinished one over a few busy accounts; ingest 2 and 3
    overlap in time with ingest 1 and repeat some of its transaction ids."""
    rng = random.Random(20261207)
    accounts = ["DE89000000000000000001", "DE89000000000000000002", "FR7600000000000000003"]

    def day(ingest: int, count: int, shift: int) -> list[tuple[str, str, datetime]]:
        return [
            (
                f"T{rng.randrange(40 if ingest > 1 else 10**6):07d}"
                if i % 7 == 0
                else f"I{ingest}-{i:05d}",
                rng.choice(accounts),
                START + timedelta(seconds=shift + rng.choice(EDGES) + 3600 * rng.randrange(3)),
            )
            for i in range(count)
        ]

    ensure_tables(spark, settings, (TRANSACTIONS, INGEST_LEDGER))
    for ingest, status, shift in (
        (1, COMPLETED, 0), (2, COMPLETED, 1800), (3, COMPLETED, 3600), (4, STARTED, 0),
    ):  # fmt: skip
        records = day(ingest, 150, shift)
        unique = list(
            {(tid, None): (tid, account, when) for tid, account, when in records}.values()
        )
        _write(spark, settings, f"ing_{ingest}", status, unique)


def window_then_join(records: DataFrame, settings: Settings) -> DataFrame:
    """The counts as the three-shuffle definition computed them (the reference)."""
    bounds = records.agg(F.min("event_time").alias("low"), F.max("event_time").alias("high"))
    low, high = bounds.first()
    earliest = low - timedelta(seconds=RULES.velocity_window_seconds)
    spark = records.sparkSession
    completed = (
        spark.table(settings.table(INGEST_LEDGER))
        .filter(F.col("status") == COMPLETED)
        .select("ingest_id")
    )
    window = (
        Window.partitionBy("account_id")
        .orderBy(F.col("event_time").cast("long"))
        .rangeBetween(-RULES.velocity_window_seconds, 0)
    )
    counts = (
        spark.table(settings.table(TRANSACTIONS))
        .filter(F.col("event_time").between(F.lit(earliest), F.lit(high)))
        .join(F.broadcast(completed), "ingest_id", "left_semi")
        .select("ingest_id", "transaction_id", F.count(F.lit(1)).over(window).alias(RECENT_COUNT))
    )
    return records.join(counts, ["ingest_id", "transaction_id"], "left")


KEYED = ["ingest_id", "transaction_id", "account_id", "event_time", RECENT_COUNT]


@pytest.mark.parametrize("partitions", [None, 1, 3])
def test_one_pass_counts_equal_the_window_then_join_counts(
    spark: SparkSession, isolated_settings: Settings, partitions: int | None
) -> None:
    settings = isolated_settings
    seeded_ingests(spark, settings)
    table = spark.table(settings.table(TRANSACTIONS))
    # Each ingest on its own, two at once (whole ingests: a first run), and a re-run's few
    # pending records (not whole: the rest of their ingest must still be counted).
    chosen = [
        (table.filter(F.col("ingest_id") == "ing_1"), True),
        (table.filter(F.col("ingest_id") == "ing_3"), True),
        (table.filter(F.col("ingest_id").isin("ing_2", "ing_3")), True),
        (table.filter(F.col("ingest_id") == "ing_2"), False),
        (table.filter((F.col("ingest_id") == "ing_2") & (F.col("transaction_id") < "I2-00040")),
         False),
    ]  # fmt: skip
    compared = 0
    for records, whole in chosen:
        expected = window_then_join(records, settings).select(*KEYED)
        for whole_ingests in {whole, False}:
            counted = with_recent_counts(records, settings, RULES, partitions, whole_ingests)
            assert_df_equality(
                counted.select(*KEYED), expected, ignore_row_order=True, ignore_nullable=True
            )
            assert counted.columns == [*records.columns, RECENT_COUNT]
        compared += expected.count()
    busy = (
        window_then_join(table.filter(F.col("ingest_id") == "ing_2"), settings)
        .filter(F.col(RECENT_COUNT) > RULES.velocity_limit)
        .count()
    )
    assert compared > 300 and busy > 0, "the seed must exercise the velocity flag"


def _exchanges(frame: DataFrame) -> int:
    plan = frame._jdf.queryExecution().executedPlan().toString()
    return plan.count("Exchange hashpartitioning")


def test_the_financial_layout_is_one_shuffle_grouped_by_account_in_a_total_order(
    spark: SparkSession, isolated_settings: Settings
) -> None:
    settings = isolated_settings
    seeded_ingests(spark, settings)
    records = spark.table(settings.table(TRANSACTIONS)).filter(F.col("ingest_id") == "ing_2")
    handler = FinancialHandler()

    laid_out = lay_out(records, handler, settings, 4, whole_ingests=True)

    assert _exchanges(laid_out) == 1, laid_out._jdf.queryExecution().executedPlan().toString()
    assert laid_out.rdd.getNumPartitions() == 4
    parts = laid_out.rdd.glom().map(
        lambda rows: [(r.account_id, r.event_time, r.transaction_id) for r in rows]
    ).collect()  # fmt: skip
    assert sum(len(part) for part in parts) == records.count()
    assert all(part == sorted(part) for part in parts)
    homes = [{account for account, _, _ in part} for part in parts]
    assert all(not (a & b) for i, a in enumerate(homes) for b in homes[i + 1 :])
    # The same records in the same partitions and order when laid out again (a task retry).
    again = lay_out(records, FinancialHandler(), settings, 4, whole_ingests=True).rdd.glom().map(
        lambda rows: [(r.account_id, r.event_time, r.transaction_id) for r in rows]
    ).collect()  # fmt: skip
    assert again == parts


def test_waves_cut_from_one_layout_give_each_record_one_outcome_and_the_same_results(
    spark: SparkSession, isolated_settings: Settings, seed: Any
) -> None:
    settings = isolated_settings
    ingest_id = seed(spark, settings, 240, name="waves.csv")

    result = process_records(
        spark, settings, ProcessOptions(batch_size=20, commit_every=80), ingest_id=ingest_id
    )

    assert (result.waves, result.reconciled, result.exit_code) == (3, True, 0)
    assert result.metrics.records == 240
    for name in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES):
        spark.sql(f"REFRESH TABLE {settings.table(name)}")
    labels = spark.sql(
        f"SELECT summary['{WAVE_PROPERTY}'] AS wave FROM "
        f"{settings.table(PROCESSED_TRANSACTIONS)}.snapshots"
    ).collect()
    assert sorted(row.wave for row in labels) == ["1/3", "2/3", "3/3"]
    processed = spark.table(settings.table(PROCESSED_TRANSACTIONS))
    waves = processed.select(F.substring("batch_id", 1, 14).alias("wave")).distinct().collect()
    assert {row.wave for row in waves} == {"financial-w000", "financial-w001", "financial-w002"}
    failed = spark.table(settings.table(PROCESSING_FAILURES))
    assert processed.count() + failed.count() == 240
    keys = processed.select("transaction_id").union(failed.select("transaction_id"))
    assert keys.distinct().count() == 240

    handler = FinancialHandler()
    table = spark.table(settings.table(TRANSACTIONS))
    expected = assess_with_spark(handler.bind(table, settings), handler.rates, handler.rules)
    columns = ["transaction_id", "result", "amount_base", "fee_base", "risk_flags"]
    assert_df_equality(
        processed.select(*columns),
        expected.filter("error_class IS NULL").select(*columns),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    flagged = processed.filter(F.array_contains("risk_flags", "account_velocity")).count()
    assert flagged > 0
