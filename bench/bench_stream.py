"""Benchmark: `sluiceway stream` from the pinned Kafka broker into published Iceberg rows.

Measured in one run, on the same machine (2 cores, shared: the numbers are noisy; repeat with
`--repeats` and read the medians):

- sustained records/s: `--records` records are produced into a topic of 2 partitions first,
  then `sluiceway stream --available-now --no-process --max-records-per-batch M` reads them
  into a fresh warehouse, once per M; the rate runs from the first batch's start to the last
  batch's publish (the per-batch JSON log lines), and over the whole process (Spark start
  included). The producer's own rate is printed too, so a slow producer is not mistaken for
  a slow stream.
- latency: a producer at a fixed rate (10,000 records/s) for `--latency-seconds` while the
  stream runs with `--trigger-seconds S`; for each record, produce time -> the ledger's
  `finished_at` of the batch whose offset ranges cover it (visible on `main`).
- the file ingest: the same records as one landing file, `sluiceway ingest` as a process.

Each stream process's peak RSS is its whole process tree (the JVM included). With
`--profile-batches` the stream runs under timing wrappers (bench-only, nothing in lib/) and
the bench prints where a micro-batch's time goes.

    make bench-stream                          # 2,000,000 records, M = 250k/500k/1M
    python bench/bench_stream.py --records 500000 --batch-sizes 500000 --latency-seconds 30
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SLUICEWAY = str(Path(sys.executable).parent / "sluiceway")
PARTITIONS = 2
SPARK_MASTER = "local[2]"
MASTER = ("--spark-master", SPARK_MASTER)
BATCH_LINE = "stream batch"
PROFILE_LINE = "bench batch profile"
PRODUCER_CONFIG = {
    "linger.ms": 20,
    "batch.size": 1 << 20,
    "compression.type": "none",
    "acks": "all",
    # Ordered and without duplicates per partition, so the k-th record sent to a partition of a
    # new topic has offset k (the latency measurement relies on it, and checks it).
    "enable.idempotence": True,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}


# --- records, cached under .bench/stream ---------------------------------------------------


def cached_values(cache: Path, records: int, seed: int, defect_rate: float) -> list[bytes]:
    """The generator's Kafka values (one landing line each), as an Arrow file once made."""
    import pyarrow as pa
    import pyarrow.feather as feather

    path = cache / f"values-{records}-seed{seed}-defects{defect_rate}.arrow"
    if not path.exists():
        from sluiceway.generate import generate_records

        print(f"generating {records:,} values -> {path} ...", flush=True)
        values, _manifest = generate_records(records, seed=seed, defect_rate=defect_rate)
        feather.write_feather(pa.table({"value": pa.array(values, pa.binary())}), str(path))
    column = feather.read_table(str(path), memory_map=True)["value"]
    values = column.to_pylist()
    return values


def cached_landing_file(cache: Path, records: int, seed: int, defect_rate: float) -> Path:
    """The same records as a landing file (same generator, same seed: the same lines)."""
    from sluiceway.generate import generate_landing_file

    path = cache / f"landing-stream-{records}-seed{seed}-defects{defect_rate}.csv"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate_landing_file(path, records, seed=seed, defect_rate=defect_rate)
    return path


# --- producing -------------------------------------------------------------------------------


def _producer(bootstrap: str, errors: list[str]) -> Any:
    from confluent_kafka import Producer

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(str(error))

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            **PRODUCER_CONFIG,
            "on_delivery": delivered,
            "delivery.report.only.error": True,
        }
    )


def produce_all(bootstrap: str, topic: str, values: list[bytes]) -> dict[str, float]:
    """Every value, round robin over the partitions, as fast as the producer goes."""
    errors: list[str] = []
    producer = _producer(bootstrap, errors)
    started = time.monotonic()
    for index, value in enumerate(values):
        while True:
            try:
                producer.produce(topic, value, partition=index % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.01)
    enqueued = time.monotonic() - started
    if producer.flush(120):
        raise SystemExit("producer: records left undelivered after 120 s")
    seconds = time.monotonic() - started
    if errors:
        raise SystemExit(f"producer: {len(errors)} delivery errors, e.g. {errors[0]}")
    return {"seconds": seconds, "enqueue_seconds": enqueued, "rate": len(values) / seconds}


class PacedProducer(threading.Thread):
    """`rate` records/s for `seconds`, round robin over the partitions; each record's
    produce time (wall clock, as the ledger's finished_at) kept by its index."""

    def __init__(
        self, bootstrap: str, topic: str, values: list[bytes], rate: int, seconds: float
    ) -> None:
        super().__init__(daemon=True)
        import numpy as np

        self.topic, self.values, self.rate = topic, values, rate
        self.total = min(len(values), int(rate * seconds))
        self.produced_at = np.zeros(self.total, dtype=np.float64)
        self.errors: list[str] = []
        self.producer = _producer(bootstrap, self.errors)
        self.achieved = 0.0

    def run(self) -> None:
        started = time.time()
        sent = 0
        while sent < self.total:
            now = time.time()
            due = min(self.total, int((now - started) * self.rate) + 1)
            while sent < due:
                self.producer.produce(self.topic, self.values[sent], partition=sent % PARTITIONS)
                self.produced_at[sent] = now
                sent += 1
            self.producer.poll(0)
            time.sleep(max(0.0, started + sent / self.rate - time.time()))
        self.producer.flush(60)
        self.achieved = self.total / max(time.time() - started, 1e-9)


# --- the stream as a process -----------------------------------------------------------------


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (the JVM is a child)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the dev extra
        return 0.0
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for process in family:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total / 1e6


@dataclass
class StreamProcess:
    """`sluiceway stream` (or the profiled wrapper) with its batch lines and peak RSS."""

    command: list[str]
    log_path: Path
    batches: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    peak_mb: float = 0.0
    started: float = 0.0
    wall: float = 0.0
    streaming: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w", buffering=1) as log:
            for line in self.process.stdout:
                log.write(line)
                if "streaming " in line:
                    self.streaming.set()
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if entry.get("msg") == BATCH_LINE:
                    self.batches.append(entry)
                elif entry.get("msg") == PROFILE_LINE:
                    self.profiles.append(entry)

    def _sample(self) -> None:
        assert self.process is not None
        while self.process.poll() is None:
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(self.process.pid))
            time.sleep(0.5)

    @property
    def records(self) -> int:
        return sum(int(entry.get("records", 0)) for entry in self.batches)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.wall = time.monotonic() - self.started
        time.sleep(0.2)  # the reader thread drains the last lines
        return code

    def interrupt(self, timeout: float = 90) -> int:
        """Ctrl-C: the CLI stops the query and exits (130)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)


def stream_command(
    topic: str, bootstrap: str, warehouse: Path, profiled: bool, *options: str
) -> list[str]:
    arguments = [
        "stream",
        "--topic",
        topic,
        "--bootstrap-servers",
        bootstrap,
        "--warehouse",
        str(warehouse),
        "--spark-master",
        SPARK_MASTER,
        "--no-process",
        *options,
    ]
    if profiled:
        return [sys.executable, __file__, "--profiled-child", "--", *arguments]
    return [SLUICEWAY, *arguments]


def _timestamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["ts"]).timestamp()


def batch_span(batches: list[dict[str, Any]]) -> float:
    """Seconds from the first batch's start (its line's time less its own seconds) to the
    last batch's line (after its publish)."""
    first = batches[0]
    return _timestamp(batches[-1]) - (_timestamp(first) - float(first["seconds"]))


# --- sustained throughput ------------------------------------------------------------------


def sustained_run(
    bootstrap: str, topic: str, records: int, per_batch: int, work: Path, profiled: bool
) -> dict[str, Any]:
    warehouse = work / f"warehouse-sustained-{per_batch}"
    shutil.rmtree(warehouse, ignore_errors=True)
    stream = StreamProcess(
        stream_command(
            topic,
            bootstrap,
            warehouse,
            profiled,
            "--available-now",
            "--max-records-per-batch",
            str(per_batch),
        ),
        work / f"stream-sustained-{per_batch}.log",
    )
    stream.start()
    code = stream.wait(timeout=3600)
    if code != 0 or stream.records != records:
        raise SystemExit(
            f"stream (M={per_batch}) exited {code} after {stream.records:,} of {records:,} "
            f"records; see {stream.log_path}"
        )
    span = batch_span(stream.batches)
    later = stream.batches[1:]
    # After the first batch (which pays the JVM's and Python's warm-up): the rate a running
    # stream keeps up with.
    steady = (
        sum(int(b["records"]) for b in later)
        / (_timestamp(later[-1]) - _timestamp(stream.batches[0]))
        if later
        else float("nan")
    )
    return {
        "steady_rate": steady,
        "per_batch": per_batch,
        "batches": len(stream.batches),
        "rate": records / span,
        "span": span,
        "wall": stream.wall,
        "whole_rate": records / stream.wall,
        "peak_mb": stream.peak_mb,
        "batch_seconds": [float(b["seconds"]) for b in stream.batches],
        "profiles": stream.profiles,
    }


# --- latency -------------------------------------------------------------------------------


def ledger_batches(warehouse: Path) -> list[dict[str, Any]]:
    """The stream's completed batches: offset ranges and finished_at, through DuckDB."""
    output = subprocess.run(
        [
            SLUICEWAY,
            "query",
            "--warehouse",
            str(warehouse),
            "--format",
            "json",
            "SELECT source_version, CAST(finished_at AS VARCHAR) AS finished_at "
            "FROM ingest_ledger WHERE status = 'completed'",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    start = output.index("[")
    rows: list[dict[str, Any]] = json.loads(output[start:])
    return rows


def _wait_for(condition: Callable[[], bool], stream: StreamProcess, timeout: float) -> bool:
    """Poll until `condition` holds, the stream exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or (stream.process and stream.process.poll() is not None):
            return False
        time.sleep(0.25)
    return True


def visible_times(rows: list[dict[str, Any]], total: int, first_offset: int = 0) -> Any:
    """For record i (partition i % P, offset first_offset + i // P) its batch's finished_at."""
    import numpy as np

    visible = np.full(total, np.nan)
    index = np.arange(total)
    offsets = first_offset + index // PARTITIONS
    for row in rows:
        finished = datetime.fromisoformat(str(row["finished_at"]).replace(" ", "T"))
        if finished.tzinfo is None:
            from datetime import UTC

            finished = finished.replace(tzinfo=UTC)
        for partition, (first, end) in json.loads(row["source_version"]).items():
            covered = (index % PARTITIONS == int(partition)) & (offsets >= first) & (offsets < end)
            visible[covered] = finished.timestamp()
    return visible


def latency_run(
    broker: Any,
    values: list[bytes],
    rate: int,
    seconds: float,
    trigger: float,
    work: Path,
    run: str,
) -> dict[str, Any]:
    import numpy as np

    topic = broker.create_topic(f"bench-latency-{trigger:g}s-{run}", PARTITIONS)
    warehouse = work / f"warehouse-latency-{trigger:g}s"
    shutil.rmtree(warehouse, ignore_errors=True)
    stream = StreamProcess(
        stream_command(
            topic, broker.bootstrap, warehouse, False, "--trigger-seconds", f"{trigger:g}"
        ),
        work / f"stream-latency-{trigger:g}s.log",
    )
    # One warm-up record per partition first (values from the end of the list, ids apart from
    # the paced ones): a new stream on an empty topic runs an empty batch 0, which
    # `_one_batch` cannot take (pa.Table.from_batches([]) raises; reported), and the paced
    # records then meet a stream that has published once.
    produce_all(broker.bootstrap, topic, values[-PARTITIONS:])
    stream.start()
    if not _wait_for(lambda: stream.records >= PARTITIONS, stream, 600):
        stream.interrupt()
        raise SystemExit(f"the stream did not publish its warm-up batch; see {stream.log_path}")
    producer = PacedProducer(broker.bootstrap, topic, values[:-PARTITIONS], rate, seconds)
    producer.start()
    producer.join()
    if producer.errors:
        raise SystemExit(f"producer: {len(producer.errors)} errors, e.g. {producer.errors[0]}")
    _wait_for(lambda: stream.records >= producer.total + PARTITIONS, stream, 600)
    stream.interrupt()
    rows = ledger_batches(warehouse)
    visible = visible_times(rows, producer.total, first_offset=1)
    delays = visible - producer.produced_at
    missing = int(np.isnan(delays).sum())
    if missing:
        raise SystemExit(f"{missing:,} produced records are not in a completed batch")
    return {
        "trigger": trigger,
        "records": producer.total,
        "achieved_rate": producer.achieved,
        "batches": len(rows),
        "p50": float(np.percentile(delays, 50)),
        "p95": float(np.percentile(delays, 95)),
        "max": float(delays.max()),
        "peak_mb": stream.peak_mb,
        "batch_seconds": [float(b["seconds"]) for b in stream.batches],
    }


# --- the file ingest -----------------------------------------------------------------------


def file_ingest_run(landing: Path, records: int, work: Path) -> dict[str, Any]:
    warehouse = work / "warehouse-file"
    shutil.rmtree(warehouse, ignore_errors=True)
    started = time.monotonic()
    done = subprocess.run(
        [SLUICEWAY, "ingest", str(landing), "--warehouse", str(warehouse), *MASTER],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"ingest exited {done.returncode}: {done.stderr[-2000:]}")
    job = None
    for line in done.stderr.splitlines():
        if line.startswith("{") and '"duration_seconds"' in line:
            job = json.loads(line).get("duration_seconds", job)
    return {"wall": wall, "whole_rate": records / wall, "job": job}


# --- profiling: timing wrappers around the batch path (bench-only) -----------------------------


class BatchTimer:
    """Seconds per step of the current micro-batch; printed as one JSON line per batch."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, time.monotonic() - started)

        return timed

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.calls[name] = self.calls.get(name, 0) + 1

    def wrap_context(
        self, enter: str, leave: str, function: Callable[..., Any]
    ) -> Callable[..., Any]:
        """A context manager factory whose enter and exit are timed apart."""

        @contextmanager
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with ExitStack() as stack:
                started = time.monotonic()
                value = stack.enter_context(function(*args, **kwargs))
                self.add(enter, time.monotonic() - started)
                stack.callback(lambda: self.add(leave, time.monotonic() - closing[0]))
                closing = [0.0]
                try:
                    yield value
                finally:
                    closing[0] = time.monotonic()

        return timed

    @contextmanager
    def batch(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            total = time.monotonic() - started
            with self.lock:
                steps = {k: round(v, 3) for k, v in self.seconds.items()}
                calls = dict(self.calls)
                self.seconds.clear()
                self.calls.clear()
            line = {"msg": PROFILE_LINE, "total": round(total, 3), "steps": steps, "calls": calls}
            print(json.dumps(line), file=sys.stderr, flush=True)


def profiled_child(arguments: list[str]) -> int:
    """`sluiceway stream` with the batch path's steps timed (module attributes wrapped)."""
    from pyspark.sql import DataFrame

    from sluiceway import cli, commits
    from sluiceway.ingest import ledger, run
    from sluiceway.stream import batch, offsets
    from sluiceway.stream import run as stream_run

    timer = BatchTimer()
    patches: list[tuple[Any, str, str]] = [
        (DataFrame, "_collect_as_arrow", "collect to Arrow"),
        (stream_run.KafkaBatch, "of", "sort by partition, offset"),
        (offsets, "values_sha256", "sha256 of values"),
        (batch, "values_sha256", "sha256 of values"),
        (batch, "tokenize_values", "tokenize_values"),
        (batch, "validate", "validate"),
        (batch, "_with_duplicate_reasons", "duplicate checks (all)"),
        (batch, "earlier_ids", "  earlier_ids (already_ingested)"),
        (batch, "ensure_tables", "ensure_tables"),
        (batch, "finish_interrupted_ingests", "finish_interrupted_ingests"),
        (ledger, "find_entry", "ledger.find_entry"),
        (ledger, "record", "ledger.record (x3)"),
        (batch, "write_target", "write_target"),
        (batch, "write_records", "write_records"),
        (batch, "stage_files", "stage_files"),
        (batch, "staged_record_count", "staged_record_count"),
        (batch, "_audit", "audit"),
        (run, "publish", "publish (2 tables)"),
        (batch, "publish_or_discard", "publish_or_discard (all)"),
        (commits.TableCommits, "observe", "commits.observe"),
        (stream_run, "ingest_batch", "ingest_batch (all)"),
        (stream_run.KafkaProbe, "end_offsets", "lag: end offsets"),
        (stream_run.KafkaProbe, "commit", "consumer group commit"),
        (stream_run, "_publish_batch_metrics", "metrics"),
    ]
    seen: set[tuple[int, str]] = set()
    for owner, attribute, name in patches:
        if (id(owner), attribute) in seen:
            continue
        seen.add((id(owner), attribute))
        original = getattr(owner, attribute)
        if isinstance(owner, type) and isinstance(owner.__dict__.get(attribute), classmethod):
            setattr(owner, attribute, classmethod(timer.wrap(name, original.__func__)))
        else:
            setattr(owner, attribute, timer.wrap(name, original))
    batch.writer_lease = timer.wrap_context("writer lease acquire", "writer lease release",
                                            batch.writer_lease)  # fmt: skip
    one_batch = stream_run._one_batch

    def timed_batch(*args: Any, **kwargs: Any) -> None:
        with timer.batch():
            one_batch(*args, **kwargs)

    stream_run._one_batch = timed_batch
    return cli.main(arguments)


def print_profile(profiles: list[dict[str, Any]]) -> None:
    """Median seconds per step over the batches with records (the first one apart)."""
    full = [p for p in profiles if p["steps"].get("ingest_batch (all)")]
    if not full:
        return
    later = full[1:] or full
    names = list(dict.fromkeys(name for p in full for name in p["steps"]))
    print(f"\nper-batch time (median of {len(later)} batches after the first; first batch apart)")
    print(f"{'step':<36}{'median s':>10}{'first s':>10}{'share':>8}")
    total = statistics.median(p["total"] for p in later)
    for name in names:
        median = statistics.median(p["steps"].get(name, 0.0) for p in later)
        first = full[0]["steps"].get(name, 0.0)
        print(f"{name:<36}{median:>10.2f}{first:>10.2f}{median / total:>8.0%}")
    print(f"{'batch total (_one_batch)':<36}{total:>10.2f}{full[0]['total']:>10.2f}")


# --- main ----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000, help="records for throughput")
    parser.add_argument(
        "--batch-sizes",
        default="250000,500000,1000000",
        help="comma-separated --max-records-per-batch values to try",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per batch size (median)")
    parser.add_argument("--latency-seconds", type=float, default=60, help="0 skips latency")
    parser.add_argument("--latency-rate", type=int, default=10_000, help="records/s produced")
    parser.add_argument("--triggers", default="2,5", help="comma-separated --trigger-seconds")
    parser.add_argument("--defect-rate", type=float, default=0.0, help="generator defect rate")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-file", action="store_true", help="do not time the file ingest")
    parser.add_argument(
        "--profile-batches",
        action="store_true",
        help="time the batch path's steps (bench-only wrappers) and print the breakdown",
    )
    parser.add_argument("--cache-dir", default=str(REPO / ".bench"), help="values + output")
    parser.add_argument("--profiled-child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.profiled_child:
        raise SystemExit(profiled_child([item for item in rest if item != "--"]))

    from sluiceway.kafka_server import running_kafka

    cache = Path(args.cache_dir) / "stream"
    work = cache / "out"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    latency_records = int(args.latency_rate * args.latency_seconds)
    needed = max(args.records, latency_records + PARTITIONS)
    values = cached_values(cache, needed, args.seed, args.defect_rate)
    run = time.strftime("%H%M%S")
    sizes = [int(item) for item in args.batch_sizes.split(",") if item]
    with running_kafka(work / "kafka") as broker:
        print(f"broker {broker.bootstrap} started in {broker.startup_seconds:.1f} s", flush=True)
        topic = broker.create_topic(f"bench-sustained-{run}", PARTITIONS)
        produced = produce_all(broker.bootstrap, topic, values[: args.records])
        print(
            f"produced {args.records:,} records in {produced['seconds']:.1f} s = "
            f"{produced['rate']:,.0f} records/s (enqueue {produced['enqueue_seconds']:.1f} s)",
            flush=True,
        )
        sustained: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
        for repeat in range(args.repeats):
            for size in sizes:
                result = sustained_run(
                    broker.bootstrap, topic, args.records, size, work, args.profile_batches
                )
                sustained[size].append(result)
                print(
                    f"  M={size:>9,} run {repeat + 1}: {result['batches']} batches, "
                    f"{result['rate']:,.0f} rec/s batches "
                    f"({result['steady_rate']:,.0f} after the first), "
                    f"{result['whole_rate']:,.0f} rec/s "
                    f"whole process ({result['wall']:.0f} s), peak {result['peak_mb']:,.0f} MB; "
                    f"batch s {[round(s, 1) for s in result['batch_seconds']]}",
                    flush=True,
                )
        latencies = []
        if args.latency_seconds > 0:
            for trigger in [float(item) for item in args.triggers.split(",") if item]:
                latency = latency_run(
                    broker,
                    values,
                    args.latency_rate,
                    args.latency_seconds,
                    trigger,
                    work,
                    run,
                )
                latencies.append(latency)
                print(
                    f"  trigger {trigger:g} s: {latency['records']:,} records at "
                    f"{latency['achieved_rate']:,.0f}/s in {latency['batches']} batches: "
                    f"p50 {latency['p50']:.1f} s, p95 {latency['p95']:.1f} s, "
                    f"max {latency['max']:.1f} s; batch s "
                    f"{[round(s, 1) for s in latency['batch_seconds']]}",
                    flush=True,
                )
    file_result = None
    if not args.skip_file:
        landing = cached_landing_file(cache, args.records, args.seed, args.defect_rate)
        file_result = file_ingest_run(landing, args.records, work)

    best = max(sizes, key=lambda size: _median([r["rate"] for r in sustained[size]]))
    runs = sustained[best]
    rate = _median([r["rate"] for r in runs])
    whole = _median([r["whole_rate"] for r in runs])
    peak = max(r["peak_mb"] for results in sustained.values() for r in results)
    print(f"\nstream benchmark: {args.records:,} records, {PARTITIONS} partitions, "
          f"{SPARK_MASTER}, 2 shared cores (noisy: medians of {args.repeats} run(s))")  # fmt: skip
    print(f"{'measure':<44}{'value':>16}{'target':>12}")
    rows = [
        ("producer rate (records/s)", f"{produced['rate']:,.0f}", ""),
        *(
            (f"stream sustained rec/s, M={size:,}", f"{_median([r['rate'] for r in res]):,.0f}", "")
            for size, res in sustained.items()
        ),
        (f"stream sustained rec/s (best M={best:,})", f"{rate:,.0f}", ">= 50,000"),
        *(
            (
                f"  after the first batch, M={size:,}",
                f"{_median([r['steady_rate'] for r in res]):,.0f}",
                "",
            )
            for size, res in sustained.items()
        ),
        ("stream whole process rec/s (Spark start)", f"{whole:,.0f}", ""),
        ("stream whole process s", f"{_median([r['wall'] for r in runs]):,.1f}", ""),
    ]
    for latency in latencies:
        tag = f"{args.latency_rate:,}/s, trigger {latency['trigger']:g} s"
        rows.append((f"latency p50/p95/max s ({tag})",
                     f"{latency['p50']:.1f}/{latency['p95']:.1f}/{latency['max']:.1f}",
                     "p95 <= 30"))  # fmt: skip
    if file_result:
        file_rate = file_result["whole_rate"]
        rows.append(("file ingest whole process rec/s", f"{file_rate:,.0f}", ""))
        if file_result["job"]:
            job_rate = args.records / file_result["job"]
            rows.append(("file ingest in-job rec/s", f"{job_rate:,.0f}", ""))
        rows.append(("stream sustained / file whole process", f"{rate / file_rate:.2f}x", ""))
        rows.append(("stream whole / file whole process", f"{whole / file_rate:.2f}x", ""))
    rows.append(("stream peak RSS MB (process tree, JVM incl.)", f"{peak:,.0f}", ""))
    for latency in latencies:
        rows.append((f"  latency run peak RSS MB (trigger {latency['trigger']:g} s)",
                     f"{latency['peak_mb']:,.0f}", ""))  # fmt: skip
    for name, value, target in rows:
        print(f"{name:<44}{value:>16}{target:>12}")
    for size in sizes:
        for result in sustained[size]:
            if result["profiles"]:
                print(f"\nM={size:,}:", end="")
                print_profile(result["profiles"])
                break


if __name__ == "__main__":
    main()
