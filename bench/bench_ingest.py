"""Benchmark: our ingest vs DuckDB, PyArrow and plain PySpark on the same landing file, one run.

Each engine runs in its own process (so peak memory is its own), on 2 threads/cores, and
writes Parquet + zstd (ours and plain PySpark write Iceberg tables). Prints wall time, the
time inside the job (without interpreter/JVM start), records/s, peak RSS, and ratios to DuckDB.
Our ingest runs with `--history-days` earlier days already in the table (distinct ids), so
the `already_ingested` look-up is measured, and the bench prints the data files it left per
day partition. It also times the driver's scan of the file against a copy with 1% stray
quotes (the chunk planner must stay linear).

    make bench-ingest                    # ~1 GB file (9M records), cached in .bench/
    python bench/bench_ingest.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = ("duckdb", "pyarrow", "pyspark", "check", "sluiceway")
BASELINE = "baseline"  # our ingest from --baseline-lib (an earlier copy of lib/), same run
# A bijection of the generator's 11-digit id numbers: random-looking ids that stay distinct
# within a file and across days (the multiplier is prime to 10**11).
ID_DIGITS = 11
ID_MULTIPLIER = 7_919_000_003
ID_OFFSET = 31_415_926_535
COLUMN_TYPES = {
    "amount": ("DECIMAL(18,2)", "decimal(18,2)"),
    "event_time": ("TIMESTAMPTZ", "timestamp"),
}


def _contract_columns() -> list[str]:
    from sluiceway.contract import COLUMN_NAMES

    return list(COLUMN_NAMES)


def run_duckdb(landing: Path, out: Path) -> None:
    import duckdb

    columns = {name: COLUMN_TYPES.get(name, ("VARCHAR",))[0] for name in _contract_columns()}
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{landing}', header = true, columns = {columns})) "
        f"TO '{out / 'duckdb.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
    )


def run_pyarrow(landing: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    types = {"amount": pa.decimal128(18, 2), "event_time": pa.timestamp("us", tz="UTC")}
    table = pacsv.read_csv(
        landing,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: types.get(name, pa.string()) for name in _contract_columns()}
        ),
    )
    pq.write_table(table, out / "pyarrow.parquet", compression="zstd")


def _spark(out: Path):
    from sluiceway.settings import load_settings
    from sluiceway.spark import build_session

    settings = load_settings(
        arguments={"warehouse": str(out / "warehouse"), "spark_master": "local[2]"}
    )
    return settings, build_session(settings, app_name="bench")


def run_pyspark(landing: Path, out: Path) -> float:
    settings, spark = _spark(out)
    schema = ", ".join(
        f"{name} {COLUMN_TYPES.get(name, ('', 'string'))[1]}" for name in _contract_columns()
    )
    started = time.monotonic()
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog}.{settings.namespace}")
    frame = spark.read.csv(str(landing), header=True, schema=schema, multiLine=False)
    frame.writeTo(settings.table("plain_pyspark")).using("iceberg").tableProperty(
        "write.parquet.compression-codec", "zstd"
    ).create()
    return time.monotonic() - started


def prepare_history(out: Path, history: list[Path]) -> None:
    """The earlier days ingested into the warehouse, in a process before the timed one."""
    from sluiceway.ingest import ingest_file
    from sluiceway.statuses import COMPLETED

    settings, spark = _spark(out)
    for earlier in history:
        done = ingest_file(spark, settings, str(earlier))
        if done.status != COMPLETED:
            raise SystemExit(f"history ingest did not complete: {done.message}")


def run_sluiceway(landing: Path, out: Path) -> tuple[float, dict]:
    """As `sluiceway ingest` runs it (pipeline.start_spark_reading): the scan starts before
    Spark, and the driver JVM is the one an ingest gets. The job's seconds start once Spark
    is up, as DuckDB's start once it is loaded."""
    from sluiceway import pipeline
    from sluiceway.job_arguments import IngestArgs
    from sluiceway.settings import load_settings
    from sluiceway.statuses import COMPLETED

    settings = load_settings(
        arguments={
            "warehouse": str(out / "warehouse"),
            "spark_master": "local[2]",
            "log_level": "WARNING",  # the table below, not the job's progress lines
        }
    )
    request = IngestArgs(str(landing), None, None, settings)
    spark, scanner = pipeline.start_spark_reading("ingest", request)
    result = pipeline.ingest(spark, request, None, scanner)
    if result.status != COMPLETED:
        raise SystemExit(f"ingest did not complete: {result.message}")
    return result.duration_seconds, {"accepted": result.accepted, "ingest_id": result.ingest_id}


def files_per_day(out: Path, ingest_id: str) -> list[tuple[str, int, int]]:
    """(day, files, bytes) of the ingest's transactions files, from the warehouse's folders."""
    found: dict[str, list[int]] = {}
    for path in out.glob("warehouse/**/transactions/data/*/*.parquet"):
        if ingest_id in path.name:
            day = path.parent.name.split("=", 1)[-1]
            found.setdefault(day, []).append(path.stat().st_size)
    return [(day, len(sizes), sum(sizes)) for day, sizes in sorted(found.items())]


def warm_page_cache(path: Path) -> None:
    """Read the file once, so every engine reads it from memory: the first to run would
    otherwise pay the disk for all of them."""
    with path.open("rb") as source:
        while source.read(16 << 20):
            pass


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (the JVM is a grandchild)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(stat[1])
            rss[int(entry.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        family.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in family) / 1e6


def measure(
    engine: str, landing: Path, work: Path, history: list[Path], baseline_lib: str | None = None
) -> dict:
    """One engine in its own process on the page-cached file: wall time (the whole process,
    interpreter and JVM start included), its own job time and the tree's peak RSS. Our
    ingest finds the earlier days already in its warehouse, ingested by an untimed process."""
    out = work / engine
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    ours = engine in ("sluiceway", BASELINE)
    environment = dict(os.environ)
    if engine == BASELINE and baseline_lib:
        # The same bench with an earlier copy of the library first on the path: before/after
        # of a change measured in one run, on the same machine state.
        environment["PYTHONPATH"] = os.pathsep.join(
            [baseline_lib, *filter(None, [environment.get("PYTHONPATH")])]
        )
    child_args = ["--file", str(landing), "--out", str(out)]
    if ours and history:
        subprocess.run(
            [sys.executable, __file__, "--engine", "prepare", *child_args,
             "--history", ",".join(map(str, history))],
            check=True, env=environment, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    warm_page_cache(landing)
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, "--engine", "sluiceway" if ours else engine, *child_args],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    peak = 0.0

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            peak = max(peak, _tree_rss_mb(child.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    wall = time.monotonic() - started
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{engine} failed with exit code {child.returncode}")
    report = json.loads(output.strip().splitlines()[-1])
    if ours:
        report["files_per_day"] = files_per_day(out, report.pop("ingest_id"))
    return {"engine": engine, "wall": wall, "job": report.pop("seconds"), "peak_mb": peak, **report}


def run_check(landing: Path, out: Path) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "sluiceway"), "check", str(landing), "--format", "json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def child_main(engine: str, landing: Path, out: Path, history: list[Path]) -> None:
    if engine == "prepare":
        prepare_history(out, history)
        return
    started = time.monotonic()
    inner = {"duckdb": run_duckdb, "pyarrow": run_pyarrow, "check": run_check}.get(engine)
    report: dict = {}
    if inner is not None:
        inner(landing, out)
        seconds = time.monotonic() - started
    elif engine == "sluiceway":
        seconds, report = run_sluiceway(landing, out)
    else:
        seconds = run_pyspark(landing, out)
    print(json.dumps({"seconds": seconds, **report}))


def with_stray_quotes(landing: Path, share: float = 0.01) -> Path:
    """A copy of the landing file with `12" pizza` in 1% of the descriptions."""
    import random

    target = landing.with_name(landing.stem + "-stray-quotes.csv")
    if target.exists():
        return target
    rng = random.Random(7)
    with landing.open("rb") as source, target.open("wb") as sink:
        for number, line in enumerate(source):
            if number and rng.random() < share and line.endswith(b"\n") and b'"' not in line:
                line = line[: line.rindex(b",") + 1] + b'12" pizza\n'
            sink.write(line)
    return target


def with_random_ids(landing: Path) -> Path:
    """A copy of a generated landing file whose ids `TXnnnnnnnnnnn` are permuted, so they
    follow no order (earlier days' files then do not prune by their id min/max); ids stay
    distinct, the manifest's figures stay true."""
    import numpy as np

    target = landing.with_name(landing.stem + "-random-ids.csv")
    if target.exists():
        return target
    data = np.fromfile(landing, dtype=np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(data == 10) + 1))
    starts = starts[starts + ID_DIGITS + 3 < len(data)]
    starts = starts[
        (data[starts] == ord("T")) & (data[starts + 1] == ord("X"))
        & (data[starts + 2 + ID_DIGITS] == ord(","))
    ]  # fmt: skip
    powers = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
    for batch in range(0, len(starts), 1 << 20):
        at = starts[batch : batch + (1 << 20), None] + 2 + np.arange(ID_DIGITS)
        digits = data[at].astype(np.int64) - ord("0")
        plain = (digits >= 0).all(axis=1) & (digits <= 9).all(axis=1)
        at, digits = at[plain], digits[plain]
        numbers = digits @ powers
        # (n * m + o) mod 10**11 without overflow: m split into two halves.
        high, low = divmod(ID_MULTIPLIER, 100_000)
        mixed = ((numbers * high) % 10**ID_DIGITS * 100_000 + numbers * low + ID_OFFSET) % (
            10**ID_DIGITS
        )
        data[at] = (mixed[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    data.tofile(target)
    manifest = landing.with_name(landing.name + ".manifest.json")
    if manifest.exists():
        document = json.loads(manifest.read_text())
        document["file"] = target.name
        document.pop("sha256", None)
        target.with_name(target.name + ".manifest.json").write_text(json.dumps(document))
    return target


def time_scan(landing: Path, cache: Path) -> float:
    from sluiceway.contract import MAX_RECORD_BYTES
    from sluiceway.ingest.landing import scan_landing_file

    timings = []
    for _attempt in range(3):  # the best of three: the page cache and the machine vary
        started = time.monotonic()
        scan_landing_file(str(landing), 16 << 20, str(cache / "staging"), MAX_RECORD_BYTES)
        timings.append(time.monotonic() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=9_000_000, help="records in the file")
    parser.add_argument("--cache-dir", default=str(REPO / ".bench"), help="file cache + output")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument(
        "--history-days", type=int, default=3, help="earlier days in the table before our ingest"
    )
    parser.add_argument(
        "--random-ids",
        action="store_true",
        help="permute the ids of the file and of the earlier days (they then do not prune)",
    )
    parser.add_argument(
        "--baseline-lib",
        help="a copy of an earlier lib/ folder: also run our ingest from it (engine "
        f"'{BASELINE}') in the same run, for before/after",
    )
    parser.add_argument("--skip-scan", action="store_true", help="do not time the driver scan")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--history", default="", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        history = [Path(item) for item in args.history.split(",") if item]
        child_main(args.engine, Path(args.file), Path(args.out), history)
        return

    from sluiceway.generate import generate_landing_file

    cache = Path(args.cache_dir)
    landing = cache / f"landing-{args.records}.csv"
    if not landing.exists():
        print(f"generating {landing} ({args.records:,} records) ...", flush=True)
        generate_landing_file(landing, args.records, seed=2026)
    history = []
    for days_back in range(args.history_days, 0, -1):
        earlier = cache / f"landing-{args.records}-minus-{days_back}.csv"
        if not earlier.exists():
            print(f"generating {earlier} (an earlier day, distinct ids) ...", flush=True)
            generate_landing_file(
                earlier,
                args.records,
                seed=2026 - days_back,
                day=datetime(2026, 11, 25, tzinfo=UTC) - timedelta(days=days_back),
                first_id=days_back * 10 * args.records,
            )
        history.append(earlier)
    if args.random_ids:
        landing = with_random_ids(landing)
        history = [with_random_ids(earlier) for earlier in history]
    size_mb = landing.stat().st_size / 1e6
    print(f"landing file {landing}: {size_mb:,.0f} MB, {args.records:,} records, 2 cores")
    if not args.skip_scan:
        stray = with_stray_quotes(landing)
        clean_scan, stray_scan = time_scan(landing, cache), time_scan(stray, cache)
        print(
            f"driver scan: clean {clean_scan:.1f} s, with 1% stray quotes {stray_scan:.1f} s "
            f"= {stray_scan / clean_scan:.2f}x (target <= 1.2x)"
        )
    engines = args.engines.split(",")
    if args.baseline_lib and BASELINE not in engines:
        engines.insert(engines.index("sluiceway") if "sluiceway" in engines else 0, BASELINE)
    results = [
        measure(engine, landing, cache / "out", history, args.baseline_lib) for engine in engines
    ]
    base = next((r for r in results if r["engine"] == "duckdb"), results[0])
    print(f"\n{'engine':<11}{'wall s':>9}{'job s':>9}{'records/s':>13}{'peak MB':>10}"
          f"{'wall/duckdb':>13}{'job/duckdb':>12}")  # fmt: skip
    for r in results:
        print(
            f"{r['engine']:<11}{r['wall']:>9.1f}{r['job']:>9.1f}"
            f"{args.records / r['job']:>13,.0f}{r['peak_mb']:>10,.0f}"
            f"{r['wall'] / base['wall']:>13.2f}{r['job'] / base['job']:>12.2f}"
        )
    for r in results:
        for day, files, size in r.get("files_per_day", []):
            print(f"sluiceway files in {day}: {files} files, {size / files / 1e6:,.1f} MB each")


if __name__ == "__main__":
    main()
