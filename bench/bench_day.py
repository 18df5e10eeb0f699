"""Benchmark, not a test: a whole day end to end, as whole processes, beside DuckDB.

Generates (once, cached in .bench/) a landing file of `--records` records (default 30M,
~3.6 GB; the same seed and name as bench_ingest.py, so their files are shared), then in one
run and one fresh warehouse:

1. `sluiceway ingest FILE`, then `sluiceway process --source FILE`, each its own process;
2. DuckDB's read_csv -> Parquet (zstd, 2 threads) of the same file, its own process;

and prints seconds, records/s and the peak resident memory of each process tree (the
Python driver, its JVM and the Python workers), and the ratios to DuckDB. The processing
run's own log gives the split: selection, waves (layout, handler, outcome files), commits,
reconciliation.

`--history N` ingests and processes N consecutive days (distinct ids, one event day each)
into the same warehouse, the last day being the file above, and prints day N / day 1 per
step: a day must cost the same on day 1 and day 1000 (target <= 1.3).

    make bench-day                                   # 30M records, one day
    .venv/bin/python bench/bench_day.py --records 1000000 --history 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = 2026  # bench_ingest.py's: the files in .bench/ serve both benches
LAST_DAY = datetime(2026, 11, 25, tzinfo=UTC)
POLL_SECONDS = 0.25


@dataclass
class Step:
    """One process: what it was, how long it took, its peak memory and log lines."""

    name: str
    seconds: float
    peak_mb: float  # the whole process tree's (driver, JVM, Python workers) at its largest
    records: int
    log: list[dict[str, object]] = field(default_factory=list)
    # CPU seconds of the process tree (sampled: less sensitive to a busy machine than wall).
    cpu_seconds: float = 0.0
    # The largest single process of the tree (the target is per process).
    largest_mb: float = 0.0

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def event(self, message: str) -> dict[str, object]:
        found = [line for line in self.log if line.get("msg") == message]
        return found[-1] if found else {}


def tree_sample(root: int) -> tuple[float, float, dict[int, float]]:
    """Resident memory (MB) of a process and all its descendants (the JVM is a grandchild),
    that of the largest one alone, and each one's CPU seconds so far (its own, without its
    children's)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    page, ticks = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        parents[pid] = int(stat[1])
        rss[pid] = int(stat[21]) * page
        cpu[pid] = (int(stat[11]) + int(stat[12])) / ticks
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        family.update(children)
        frontier.extend(children)
    sizes = [rss.get(pid, 0) for pid in family]
    return sum(sizes) / 1e6, max(sizes) / 1e6, {pid: cpu[pid] for pid in family if pid in cpu}


def run_process(name: str, command: list[str], records: int, log_file: Path) -> Step:
    """Run a command to its end, polling its process tree's memory; its stderr to log_file."""
    started = time.monotonic()
    with log_file.open("w") as err:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        peak = largest = 0.0
        cpu: dict[int, float] = {}

        def sample() -> None:
            nonlocal peak, largest
            while child.poll() is None:
                rss, single, seen = tree_sample(child.pid)
                peak, largest = max(peak, rss), max(largest, single)
                cpu.update(seen)
                time.sleep(POLL_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        seconds = time.monotonic() - started
        sampler.join()
    if code != 0:
        tail = log_file.read_text()[-3000:]
        raise SystemExit(f"{name} failed with exit code {code} (log {log_file}):\n{tail}")
    log = []
    for line in log_file.read_text().splitlines():
        if line.startswith("{"):
            try:
                log.append(json.loads(line))
            except ValueError:
                continue
    step = Step(name, seconds, peak, records, log, sum(cpu.values()), largest)
    print(f"... {name}: {seconds:.1f} s, cpu {step.cpu_seconds:.1f} s, peak {peak:,.0f} MB "
          f"(largest process {largest:,.0f} MB), load {os.getloadavg()[0]:.1f}",
          file=sys.stderr, flush=True)  # fmt: skip
    return step


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def landing_file(cache: Path, records: int, days_back: int) -> Path:
    """The day `days_back` days before the last one: bench_ingest.py's names, seeds, days and
    ids, so an existing file is reused when its manifest says the generator made it so."""
    from sluiceway.generate import generate_landing_file, manifest_path

    suffix = f"-minus-{days_back}" if days_back else ""
    path = cache / f"landing-{records}{suffix}.csv"
    seed = SEED - days_back
    if path.exists() and manifest_path(path).exists():
        manifest = json.loads(manifest_path(path).read_text())
        same = (manifest.get("seed"), manifest.get("records"), manifest.get("defect_rate"),
                manifest.get("gzip_members"))  # fmt: skip
        if same == (seed, records, 0.0, 0) and manifest.get("sha256") == sha256_of(path):
            return path
        print(f"{path} is not the generator's output for seed {seed}: regenerating")
    print(f"generating {path} ({records:,} records) ...", file=sys.stderr, flush=True)
    generate_landing_file(
        path,
        records,
        seed=seed,
        day=LAST_DAY - timedelta(days=days_back),
        first_id=days_back * 10 * records,
    )
    return path


def duckdb_child(landing: Path, out: Path) -> None:
    """DuckDB's read_csv -> Parquet (zstd) on 2 threads, bench_ingest.py's statement."""
    import duckdb

    from sluiceway.contract import COLUMN_NAMES

    types = {"amount": "DECIMAL(18,2)", "event_time": "TIMESTAMPTZ"}
    columns = {name: types.get(name, "VARCHAR") for name in COLUMN_NAMES}
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{landing}', header = true, columns = {columns})) "
        f"TO '{out / 'duckdb.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
    )


def warm_page_cache(path: Path) -> None:
    """Read the file once before a timed step, so ours and DuckDB both read it from memory
    (whichever ran first would otherwise pay the disk for both)."""
    with path.open("rb") as source:
        while source.read(16 << 20):
            pass


def ingest_and_process(
    landing: Path, records: int, warehouse: Path, logs: Path, label: str
) -> tuple[Step, Step]:
    sluiceway = str(BIN / "sluiceway")
    warm_page_cache(landing)
    ingest = run_process(
        f"{label} ingest",
        [sluiceway, "ingest", str(landing), "--warehouse", str(warehouse)],
        records,
        logs / f"{label}-ingest.log",
    )
    process = run_process(
        f"{label} process",
        [sluiceway, "process", "--source", str(landing), "--warehouse", str(warehouse)],
        records,
        logs / f"{label}-process.log",
    )
    return ingest, process


def print_steps(steps: list[Step], duckdb: Step | None) -> None:
    print(f"\n{'step':<24}{'seconds':>9}{'cpu s':>8}{'records/s':>12}{'peak MB':>10}"
          f"{'1 proc MB':>10}{'/ duckdb':>10}")  # fmt: skip
    for step in steps:
        ratio = f"{step.seconds / duckdb.seconds:>10.2f}" if duckdb else ""
        print(
            f"{step.name:<24}{step.seconds:>9.1f}{step.cpu_seconds:>8.1f}"
            f"{step.per_second:>12,.0f}{step.peak_mb:>10,.0f}{step.largest_mb:>10,.0f}{ratio}"
        )


def print_process_split(step: Step) -> None:
    """The processing run's own phases, from its JSON log."""
    started, finished = step.event("processing started"), step.event("processing finished")
    laid_out = step.event("processing laid out")
    waves = [line for line in step.log if line.get("msg") == "processing wave committed"]
    commit = sum(float(str(line.get("commit_seconds", 0))) for line in waves)
    handler = sum(float(str(line.get("handler_seconds", 0))) for line in waves)
    print(
        f"{step.name}: selection {started.get('selection_seconds', '?')} s, layout "
        f"{laid_out.get('layout_seconds', '?')} s, {len(waves)} waves: handler {handler:.1f} s, "
        f"commits {commit:.1f} s; reconcile {finished.get('reconcile_seconds', '?')} s; "
        f"reconciled {finished.get('reconciled', '?')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=30_000_000, help="records per day")
    parser.add_argument("--history", type=int, default=1, help="consecutive days (N)")
    parser.add_argument("--cache-dir", default=str(REPO / ".bench"), help="landing files")
    parser.add_argument("--work-dir", default=str(REPO / ".bench" / "day"), help="warehouse, logs")
    parser.add_argument("--no-duckdb", action="store_true", help="skip DuckDB's run")
    parser.add_argument("--duckdb-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        duckdb_child(Path(args.duckdb_child[0]), Path(args.duckdb_child[1]))
        return 0

    cache, work = Path(args.cache_dir), Path(args.work_dir)
    cache.mkdir(parents=True, exist_ok=True)
    days = [landing_file(cache, args.records, back) for back in range(args.history - 1, -1, -1)]
    last = days[-1]
    size_mb = last.stat().st_size / 1e6
    print(f"landing file {last}: {size_mb:,.0f} MB, {args.records:,} records per day, "
          f"{len(days)} day(s), {os.cpu_count()} cores")  # fmt: skip
    run = work / f"run-{args.records}-{args.history}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    # A fresh warehouse: day 1 starts from nothing.
    warehouse = run / "warehouse"
    history = [
        ingest_and_process(day, args.records, warehouse, run, f"day {number}")
        for number, day in enumerate(days, start=1)
    ]
    duckdb = None
    if not args.no_duckdb:
        out = run / "duckdb"
        out.mkdir()
        warm_page_cache(last)
        duckdb = run_process(
            "duckdb read_csv",
            [sys.executable, __file__, "--duckdb-child", str(last), str(out)],
            args.records,
            run / "duckdb.log",
        )

    ingest, process = history[-1]
    day = len(history)
    whole = Step(f"day {day} ingest+process", ingest.seconds + process.seconds,
                 max(ingest.peak_mb, process.peak_mb), args.records,
                 cpu_seconds=ingest.cpu_seconds + process.cpu_seconds,
                 largest_mb=max(ingest.largest_mb, process.largest_mb))  # fmt: skip
    print_steps([ingest, process, whole, *([duckdb] if duckdb else [])], duckdb)
    print_process_split(process)
    if len(history) > 1:
        first_ingest, first_process = history[0]
        print(f"\nday {day} / day 1: ingest {ingest.seconds / first_ingest.seconds:.2f}x, "
              f"process {process.seconds / first_process.seconds:.2f}x, ingest+process "
              f"{whole.seconds / (first_ingest.seconds + first_process.seconds):.2f}x "
              "(target <= 1.3x)")  # fmt: skip
        for number, (each_ingest, each_process) in enumerate(history, start=1):
            print(f"  day {number}: ingest {each_ingest.seconds:.1f} s "
                  f"(peak {each_ingest.peak_mb:,.0f} MB), process {each_process.seconds:.1f} s "
                  f"(peak {each_process.peak_mb:,.0f} MB)")  # fmt: skip
    print(f"\nwarehouse and logs: {run}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
