"""Benchmark, not a test: the financial rules three ways, then three days of history.

On day 1's ingested records:
(a) the engine: FinancialHandler (pyarrow, vectorized) in mapInArrow with batching and retries,
    at the default settings (batch size 500; a vectorized handler is called per ~10,000-row
    slice) and at --batch-size 5000
(b) naive: the same rules row by row (`assess_record`) in rdd.mapPartitions
(c) native: the same rules as Spark expressions (`assess_with_spark`)
plus the engine with the no-op handler (its own overhead per record). Every variant reads the
same cached input (transactions + the velocity counts, laid out in the same partitions) and
writes to Spark's `noop` sink, so these timings compare the per-record work only.

Then the history run: `process_records` (what `sluiceway process --ingest-id` runs: select
pending, bind, the engine writing the outcome files, both commits, reconcile) of day 1, day 2
and day 3, each ingested just before, all in one fresh warehouse.

Targets on 2 cores: (a) >= 10x faster than (b); (a) within 1.5x of (c); day 3's process time
within 1.3x of day 1's; end to end within 1.5x of (a).

    .venv/bin/python bench/bench_process.py [--records 1000000] [--days 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    StringType,
    StructField,
    StructType,
)

from sluiceway.generate import generate_landing_file
from sluiceway.ingest import ingest_file
from sluiceway.logs import configure_logging
from sluiceway.processing import ProcessOptions, ProcessResult, process_records
from sluiceway.processing.financial import FinancialHandler, assess_record, assess_with_spark
from sluiceway.processing.handlers import NoopHandler
from sluiceway.processing.partition import ENGINE_INPUT_COLUMNS, PartitionPlan, process_partition
from sluiceway.processing.run import idempotency_key_column, lay_out
from sluiceway.settings import Settings, load_settings
from sluiceway.spark import build_session
from sluiceway.tables import TRANSACTIONS

NAIVE_SCHEMA = StructType(
    [
        StructField("transaction_id", StringType()),
        StructField("result", StringType()),
        StructField("base_currency", StringType()),
        StructField("amount_base", DecimalType(18, 2)),
        StructField("fee_base", DecimalType(18, 2)),
        StructField("risk_flags", ArrayType(StringType())),
        StructField("error_class", StringType()),
    ]
)


def timed(label: str, run: Callable[[], None], repeat: int) -> float:
    """Best of `repeat` wall-clock runs (the first also warms the Python workers)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    print(f"... {label}: {best:.2f} s", file=sys.stderr, flush=True)
    return best


def sink(frame: DataFrame) -> None:
    frame.write.format("noop").mode("overwrite").save()


FIRST_DAY = datetime(2026, 11, 23, tzinfo=UTC)


def landing_file(folder: Path, records: int, day: int) -> Path:
    """Day `day`'s landing file (generated once): its own event day and its own ids.

    The generator numbers ids from TX00000000000 in every file, and the ingest rejects an id
    it saw in the last days: each day's ids get the day in their prefix instead.
    """
    path = folder / f"landing-{records}-day{day}.csv"
    if path.exists():
        return path
    raw = folder / f"generated-{records}-day{day}.csv"
    generate_landing_file(
        raw, records, seed=11 + day, defect_rate=0.0, day=FIRST_DAY + timedelta(days=day - 1)
    )
    text = re.sub(rb"(?m)^TX(?=\d{11},)", b"D%dX" % day, raw.read_bytes())
    path.write_bytes(text)
    raw.unlink()
    return path


def process_day(spark, settings: Settings, landing: Path) -> tuple[float, ProcessResult]:
    """Ingest a day's file, then time `process_records` of that ingest (default options)."""
    ingested = ingest_file(spark, settings, str(landing))
    started = time.perf_counter()
    run = process_records(spark, settings, ProcessOptions(), ingest_id=ingested.ingest_id)
    seconds = time.perf_counter() - started
    print(f"... process {landing.name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return seconds, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per day")
    parser.add_argument("--days", type=int, default=3, help="consecutive days processed")
    parser.add_argument("--dir", default=".bench/process")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    # A fresh warehouse: the history run must start from day 1.
    warehouse = folder / f"warehouse-{args.records}"
    shutil.rmtree(warehouse, ignore_errors=True)
    settings = load_settings(
        environ=os.environ,
        arguments={"warehouse": str(warehouse), "namespace": "bench_process",
                   "spark_master": "local[2]", "shuffle_partitions": 4},
    )  # fmt: skip
    # The runs' JSON log lines (stderr) carry each phase's seconds: selection, handler, commit.
    configure_logging("bench-process", "INFO")
    days = [landing_file(folder, args.records, day) for day in range(1, args.days + 1)]
    spark = build_session(settings, app_name="sluiceway-bench-process")
    ingested = ingest_file(spark, settings, str(days[0]))
    cores = spark.sparkContext.defaultParallelism

    handler = FinancialHandler()
    transactions = spark.table(settings.table(TRANSACTIONS)).filter(
        f"ingest_id = '{ingested.ingest_id}'"
    )
    bound = (
        handler.bind(transactions, settings)
        .withColumn("idempotency_key", idempotency_key_column(handler.name))
        .repartition(cores * 2, "transaction_id")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    records = bound.count()
    print(f"... {records:,} records cached in {cores * 2} partitions", file=sys.stderr)
    rates, rules = handler.rates, handler.rules

    def counted(plan: PartitionPlan):
        """The engine in a task, each outcome batch counted instead of written."""

        def run(batches):
            from pyspark import TaskContext

            partition = TaskContext.get().partitionId()
            for outcome in process_partition(batches, plan, partition):
                yield pa.RecordBatch.from_pydict({"records": [outcome.num_rows]})

        return run

    def bind_and_engine() -> None:
        """(a) plus the handler's own Spark-side work: bind (FX rates, the velocity window)
        on the day's records as stored, in the engine's layout (the run's `lay_out`: one
        shuffle by account), then the engine."""
        fresh = FinancialHandler()
        laid_out = lay_out(transactions, fresh, settings, cores * 2)
        sink(laid_out.mapInArrow(counted(PartitionPlan(fresh)), "records bigint"))

    def by_transaction_id(chosen) -> DataFrame:
        """The cached records in the engine's generic layout: hash and sort by transaction id."""
        wanted = dict.fromkeys((*ENGINE_INPUT_COLUMNS, *chosen.columns))
        return (
            bound.select(*wanted)
            .repartition(cores * 2, "transaction_id")
            .sortWithinPartitions("transaction_id")
        )

    def engine(chosen, batch_size: int = ProcessOptions.batch_size) -> Callable[[], None]:
        """What a wave's tasks run (a layout, then the engine in mapInArrow) on the cached
        records, with each outcome batch counted instead of written."""
        plan = PartitionPlan(chosen, batch_size=batch_size)
        return lambda: sink(by_transaction_id(chosen).mapInArrow(counted(plan), "records bigint"))

    def naive() -> None:
        def per_row(rows):
            for row in rows:
                out = assess_record(row.asDict(), rates, rules)
                yield tuple(out.get(field.name) for field in NAIVE_SCHEMA.fields)

        sink(spark.createDataFrame(bound.rdd.mapPartitions(per_row), NAIVE_SCHEMA))

    results = {
        "scan only (cached input -> noop sink)": timed("scan", lambda: sink(bound), args.repeat),
        "(a) engine + financial handler, default settings": timed(
            "engine", engine(handler), args.repeat
        ),
        "(a') the same with --batch-size 5000": timed(
            "engine 5000", engine(handler, 5000), args.repeat
        ),
        "(b) naive rdd.mapPartitions, row by row": timed("naive", naive, 1),
        "(c) native Spark expressions": timed(
            "native", lambda: sink(assess_with_spark(bound, rates, rules)), args.repeat
        ),
        "engine + no-op handler": timed("noop", engine(NoopHandler()), args.repeat),
        "(a+) handler bind (FX, velocity window) + engine, from the table": timed(
            "bind + engine", bind_and_engine, args.repeat
        ),
    }
    bound.unpersist()

    # Day 1 is already ingested; days 2.. are ingested right before their processing.
    started = time.perf_counter()
    run = process_records(spark, settings, ProcessOptions(), ingest_id=ingested.ingest_id)
    history = [(time.perf_counter() - started, run)]
    print(f"... process day 1: {history[0][0]:.2f} s", file=sys.stderr, flush=True)
    history.extend(process_day(spark, settings, landing) for landing in days[1:])
    for day, (seconds, _run) in enumerate(history, start=1):
        results[f"process_records day {day} (select, bind, engine, commit, reconcile)"] = seconds

    a = results["(a) engine + financial handler, default settings"]
    b = results["(b) naive rdd.mapPartitions, row by row"]
    c = results["(c) native Spark expressions"]
    scan = results["scan only (cached input -> noop sink)"]
    noop = results["engine + no-op handler"]
    print(f"\n{records:,} records per day, {cores} cores (local[{cores}]), default settings\n")
    print("| variant | seconds | records/s |")
    print("|---|---:|---:|")
    for label, seconds in results.items():
        print(f"| {label} | {seconds:.2f} | {records / seconds:,.0f} |")
    print()
    a5000 = results["(a') the same with --batch-size 5000"]
    print(f"(a) vs (b): {b / a:.1f}x faster (target >= 10x); (a') vs (b): {b / a5000:.1f}x")
    print(f"(a) vs (c): {a / c:.2f}x the native time (target <= 1.5x)")
    print(f"engine overhead, no-op handler: {(noop - scan) / records * 1e6:.2f} µs per record "
          f"({noop / records * 1e6:.2f} µs per record including the scan)")  # fmt: skip
    first, last = history[0][0], history[-1][0]
    print(f"day {len(history)} vs day 1, process_records: {last / first:.2f}x (target <= 1.3x)")
    print(f"end to end vs engine only, day 1: {first / a:.2f}x; day {len(history)}: "
          f"{last / a:.2f}x (target <= 1.5x)")  # fmt: skip
    waves = [run.metrics.wave_seconds for _seconds, run in history]
    print(f"end to end vs its own waves (bind + engine + outcome files, in the run), day 1: "
          f"{first / waves[0]:.2f}x; day {len(history)}: {last / waves[-1]:.2f}x")  # fmt: skip
    a_plus = results["(a+) handler bind (FX, velocity window) + engine, from the table"]
    print(f"end to end vs handler bind + engine (a+), day 1: {first / a_plus:.2f}x; "
          f"day {len(history)}: {last / a_plus:.2f}x")  # fmt: skip
    for day, (_seconds, run) in enumerate(history, start=1):
        print(
            f"day {day}: reconciled {run.reconciled}; {run.metrics.records_ok:,} ok, "
            f"{run.metrics.records_failed:,} failed"
        )
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
