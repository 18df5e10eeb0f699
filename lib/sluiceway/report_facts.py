"""What the run report says about one ingest, and about each stream, read from the tables.

Everything comes through the query helper (Athena for an s3:// warehouse, DuckDB locally),
with every query written once in Athena's dialect (REPORT_SQL for the ingest, STREAM_SQL for
the streams), so the report describes what was committed, not logs. `report` turns these
facts into the HTML page.

A stream (`sluiceway stream`, docs/adr/0013-streaming-ingestion.md) writes one ledger row per
micro-batch under one `kafka://TOPIC` source: thousands a day. The report therefore describes
one ingest (by default the latest landing file's) and sums each stream's batches up by topic
(`StreamFacts`), listing only the most recent ones, instead of showing each batch as a file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SluicewayError
from sluiceway.job_runs import INGEST_STEP
from sluiceway.query import existing_tables, is_athena, query
from sluiceway.query_athena import AthenaClient
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED

if TYPE_CHECKING:
    import pandas as pd

# How a stream's ledger rows (`kafka://TOPIC`) and records (`kafka://TOPIC/PARTITION`) are
# named: `sluiceway.stream.offsets.SCHEME`, not imported because that package needs pyspark
# and the report's Athena path must not (a unit test keeps the two equal).
STREAM_SCHEME = "kafka://"
# The batches of each stream the report lists one by one, newest first.
RECENT_BATCHES = 20


@dataclass(frozen=True)
class ReportQuery:
    """One query of the report, in Athena's (Trino) dialect; run on DuckDB via sqlglot locally.

    `{ingest_id}` stands for the ingest (quotes doubled); the query is skipped while `table`
    does not exist yet.
    """

    table: str
    sql: str

    def render(self, ingest_id: str) -> str:
        return self.sql.replace("{ingest_id}", ingest_id.replace("'", "''"))


_BY_INGEST = "WHERE ingest_id = '{ingest_id}'"
_IS_STREAM = f"source_file LIKE '{STREAM_SCHEME}%'"


def _not_other_stream_batches(snapshot_column: str) -> str:
    """Leave out the snapshots other stream batches committed (one per batch and table): the
    Streams section sums them up, the snapshot list would otherwise be all batches."""
    return (
        f"WHERE snapshot_id NOT IN (SELECT {snapshot_column} FROM ingest_ledger "
        f"WHERE {_IS_STREAM} AND {snapshot_column} IS NOT NULL "
        "AND ingest_id <> '{ingest_id}')"
    )


# Every query the report runs, one text for Athena and (transpiled) DuckDB.
REPORT_SQL: dict[str, ReportQuery] = {
    # An empty ingest id means the latest completed landing file, or the latest stream batch
    # when no file was ingested yet (the Streams section covers the batches).
    "ledger": ReportQuery(
        "ingest_ledger",
        f"SELECT * FROM ingest_ledger WHERE status = '{COMPLETED}' "
        "AND ('{ingest_id}' = '' OR ingest_id = '{ingest_id}') "
        f"ORDER BY CASE WHEN {_IS_STREAM} THEN 1 ELSE 0 END, finished_at DESC LIMIT 1",
    ),
    # Records and the physical lines they cover (a quoted field can span lines).
    "transactions_rows": ReportQuery(
        "transactions",
        "SELECT COUNT(*) AS records, COALESCE(SUM(last_line_number - line_number + 1), 0) "
        f"AS lines FROM transactions {_BY_INGEST}",
    ),
    "rejected_rows": ReportQuery(
        "rejected_records",
        "SELECT COUNT(*) AS records, COALESCE(SUM(last_line_number - line_number + 1), 0) "
        f"AS lines FROM rejected_records {_BY_INGEST}",
    ),
    "rejects_by_reason": ReportQuery(
        "rejected_records",
        "SELECT reason, COUNT(*) AS records FROM rejected_records "
        f"CROSS JOIN UNNEST(reasons) AS r(reason) {_BY_INGEST} GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "outcomes": ReportQuery(
        "processed_transactions",
        f"SELECT result, COUNT(*) AS records FROM processed_transactions {_BY_INGEST} "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "failures_by_class": ReportQuery(
        "processing_failures",
        f"SELECT error_class, COUNT(*) AS records FROM processing_failures {_BY_INGEST} "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
    "attempts": ReportQuery(
        "processed_transactions",
        "SELECT CAST(attempts AS VARCHAR) AS attempts, COUNT(*) AS records "
        f"FROM processed_transactions {_BY_INGEST} GROUP BY attempts ORDER BY attempts",
    ),
    # The ingest's and processing's runs, each its own wall time and workers (job_runs.py).
    "job_runs": ReportQuery(
        "job_runs",
        "SELECT step, run_id, compute, workers, records, run_ingests, duration_seconds "
        f"FROM job_runs {_BY_INGEST} "
        "ORDER BY CASE WHEN step = 'ingest' THEN 0 ELSE 1 END, started_at, run_id",
    ),
    # Iceberg metadata tables, Athena's syntax (pyiceberg provides them locally).
    "transactions_snapshots": ReportQuery(
        "transactions",
        'SELECT snapshot_id, committed_at FROM "transactions$snapshots" '
        f"{_not_other_stream_batches('transactions_snapshot_id')} ORDER BY committed_at",
    ),
    "rejected_records_snapshots": ReportQuery(
        "rejected_records",
        'SELECT snapshot_id, committed_at FROM "rejected_records$snapshots" '
        f"{_not_other_stream_batches('rejected_snapshot_id')} ORDER BY committed_at",
    ),
}

_COMPLETED_BATCH = f"status = '{COMPLETED}'"
_BATCH_COLUMNS = (
    "source_file, ingest_id, status, source_version, lines_read, accepted, rejected, "
    "rejected_by_reason, started_at, finished_at, duration_seconds"
)


def _per_stream(table: str, column: str, alias: str) -> ReportQuery:
    """`table`'s rows of stream batches counted by `column`, per stream (a processing figure
    the ingest report shows per ingest)."""
    return ReportQuery(
        table,
        f"SELECT l.source_file, {column} AS {alias}, COUNT(*) AS records FROM {table} t "
        "JOIN ingest_ledger l ON t.ingest_id = l.ingest_id "
        f"WHERE l.{_IS_STREAM} GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
    )


# The Streams section's queries, Athena's dialect as REPORT_SQL; one row per stream (topic)
# or per stream and key, never per batch except the RECENT_BATCHES newest.
STREAM_SQL: dict[str, ReportQuery] = {
    # Counts and timings of the completed batches; the others (failed, or interrupted before
    # `completed`) published nothing and are only counted. Percentiles are approximate on
    # Athena and DuckDB alike.
    "stream_batches": ReportQuery(
        "ingest_ledger",
        "SELECT source_file, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN 1 ELSE 0 END) AS batches, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN 0 ELSE 1 END) AS other_batches, "
        f"MIN(CASE WHEN {_COMPLETED_BATCH} THEN started_at END) AS first_started_at, "
        f"MAX(CASE WHEN {_COMPLETED_BATCH} THEN finished_at END) AS last_finished_at, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN lines_read ELSE 0 END) AS records, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN accepted ELSE 0 END) AS accepted, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN rejected ELSE 0 END) AS rejected, "
        f"SUM(CASE WHEN {_COMPLETED_BATCH} THEN duration_seconds ELSE 0 END) AS batch_seconds, "
        f"approx_percentile(CASE WHEN {_COMPLETED_BATCH} THEN duration_seconds END, 0.5) "
        "AS median_batch_seconds, "
        f"approx_percentile(CASE WHEN {_COMPLETED_BATCH} THEN duration_seconds END, 0.95) "
        "AS p95_batch_seconds "
        f"FROM ingest_ledger WHERE {_IS_STREAM} GROUP BY 1 ORDER BY 1",
    ),
    "stream_recent_batches": ReportQuery(
        "ingest_ledger",
        f"SELECT {_BATCH_COLUMNS} FROM (SELECT {_BATCH_COLUMNS}, row_number() OVER "
        "(PARTITION BY source_file ORDER BY started_at DESC, ingest_id) AS recency "
        f"FROM ingest_ledger WHERE {_IS_STREAM}) AS batches WHERE recency <= {RECENT_BATCHES} "
        "ORDER BY source_file, started_at DESC, ingest_id",
    ),
    # From the records, as the ingest's; a record's source is its topic and partition.
    "stream_rejects_by_reason": ReportQuery(
        "rejected_records",
        f"SELECT regexp_extract(source_file, '^{STREAM_SCHEME}[^/]*') AS stream, reason, "
        "COUNT(*) AS records FROM rejected_records CROSS JOIN UNNEST(reasons) AS r(reason) "
        f"WHERE {_IS_STREAM} GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
    ),
    "stream_outcomes": _per_stream("processed_transactions", "t.result", "result"),
    "stream_failures_by_class": _per_stream("processing_failures", "t.error_class", "error_class"),
    "stream_attempts": _per_stream(
        "processed_transactions", "CAST(t.attempts AS VARCHAR)", "attempts"
    ),
    # From a batch's end to its last processing result: how far processing trails the stream.
    "stream_processing_delay": ReportQuery(
        "processed_transactions",
        "SELECT l.source_file, "
        "approx_percentile(to_unixtime(p.last_result_at) - to_unixtime(l.finished_at), 0.5) "
        "AS median_seconds, "
        "approx_percentile(to_unixtime(p.last_result_at) - to_unixtime(l.finished_at), 0.95) "
        "AS p95_seconds "
        "FROM (SELECT ingest_id, MAX(processed_at) AS last_result_at "
        "FROM processed_transactions GROUP BY 1) AS p "
        "JOIN ingest_ledger l ON p.ingest_id = l.ingest_id "
        f"WHERE l.{_IS_STREAM} AND l.{_COMPLETED_BATCH} GROUP BY 1 ORDER BY 1",
    ),
}


@dataclass(frozen=True)
class StepRun:
    """One run of a step for the ingest, as `job_runs` recorded it (workers and compute None
    when the run was not recorded: an ingest from before `job_runs`, or a killed run's)."""

    step: str
    run_id: str
    compute: str | None
    workers: int | None
    records: int
    seconds: float
    # Other ingests the same run worked on: its time and cost are shared with them.
    other_ingests: int = 0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def cost_usd(self, worker_hour_usd: Mapping[str, float]) -> float | None:
        """Seconds x workers x the compute's price per worker-hour; None when the run's
        workers or its compute's price are unknown."""
        price = worker_hour_usd.get(self.compute or "")
        if self.workers is None or price is None:
            return None
        return run_cost_usd(self.seconds, self.workers, price)


def run_cost_usd(seconds: float, workers: int, usd_per_worker_hour: float) -> float:
    """What `workers` workers cost for `seconds` at a price per worker-hour."""
    return seconds * workers * usd_per_worker_hour / 3600


@dataclass(frozen=True)
class RunFacts:
    """The numbers the report shows, gathered once so tests can check them directly."""

    ingest_id: str
    ledger: dict[str, Any]
    transactions_rows: int
    rejected_rows: int
    transactions_lines: int
    rejected_lines: int
    rejects_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    failures_by_class: list[tuple[str, int]]
    attempts: list[tuple[str, int]]
    # The ingest's runs first, then the processing runs, oldest first.
    steps: list[StepRun]
    snapshots: list[dict[str, Any]]
    # The prices the cost is computed with (Settings.worker_hour_prices).
    worker_hour_usd: Mapping[str, float]

    @property
    def reconciled(self) -> bool:
        """Every physical line is in one accepted or rejected record, and both tables hold
        exactly the records and lines the ledger says."""
        led = self.ledger
        return (
            led["lines_read"] == led["accepted_lines"] + led["rejected_lines"]
            and (self.transactions_rows, self.transactions_lines)
            == (led["accepted"], led["accepted_lines"])
            and (self.rejected_rows, self.rejected_lines)
            == (led["rejected"], led["rejected_lines"])
        )

    @property
    def processed(self) -> int:
        return sum(count for _, count in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(count for _, count in self.failures_by_class)

    def cost_usd(self) -> float:
        """The cost of every run whose workers and price are known."""
        costs = [run.cost_usd(self.worker_hour_usd) for run in self.steps]
        return sum(cost for cost in costs if cost is not None)

    @property
    def cost_complete(self) -> bool:
        """Whether every run's cost is known (else cost_usd is a lower bound)."""
        return all(run.cost_usd(self.worker_hour_usd) is not None for run in self.steps)


class _Reader:
    """Runs the report's queries for one ingest, skipping those whose table is absent."""

    def __init__(self, settings: Settings, athena: AthenaClient | None) -> None:
        self.settings = settings
        self.athena = athena
        self.tables = existing_tables(settings, athena)

    def frame(self, name: str, ingest_id: str) -> pd.DataFrame | None:
        return self.run(REPORT_SQL[name], ingest_id)

    def run(self, report_query: ReportQuery, ingest_id: str = "") -> pd.DataFrame | None:
        if report_query.table not in self.tables:
            return None
        return query(self.settings, report_query.render(ingest_id), athena=self.athena)

    def pairs(self, name: str, ingest_id: str) -> list[tuple[str, int]]:
        frame = self.frame(name, ingest_id)
        if frame is None:
            return []
        return [(str(row[0]), int(row[1])) for row in frame.itertuples(index=False)]

    def numbers(self, name: str, ingest_id: str, width: int) -> list[float]:
        """The first row's `width` values of a one-row aggregate; zeros for an absent table."""
        import pandas as pd

        frame = self.frame(name, ingest_id)
        if frame is None or frame.empty:
            return [0.0] * width
        return [float(v) if pd.notna(v) else 0.0 for v in frame.iloc[0, :width]]


def gather(
    settings: Settings, ingest_id: str | None = None, athena: AthenaClient | None = None
) -> RunFacts:
    """Read the facts of one ingest (default: the latest completed one) from the tables.

    Local warehouses are read with DuckDB, s3:// ones through Athena (`athena` replaces the
    awswrangler client, for tests).
    """
    reader = _Reader(settings, athena)
    where = (
        settings.warehouse if not is_athena(settings) else (f"Athena database {settings.namespace}")
    )
    if "ingest_ledger" not in reader.tables:
        raise SluicewayError(f"no ingest_ledger in {where}; run `sluiceway ingest FILE` first")
    ledger = reader.frame("ledger", ingest_id or "")
    if ledger is None or ledger.empty:
        raise SluicewayError(
            f"no completed ingest {ingest_id or ''} in {where}; list them with "
            '`sluiceway query "SELECT ingest_id, status FROM ingest_ledger"`'
        )
    row = ledger.iloc[0].to_dict()
    ident = str(row["ingest_id"])
    transactions_rows, transactions_lines = map(int, reader.numbers("transactions_rows", ident, 2))
    rejected_rows, rejected_lines = map(int, reader.numbers("rejected_rows", ident, 2))
    return RunFacts(
        ingest_id=ident,
        ledger=row,
        transactions_rows=transactions_rows,
        rejected_rows=rejected_rows,
        transactions_lines=transactions_lines,
        rejected_lines=rejected_lines,
        rejects_by_reason=reader.pairs("rejects_by_reason", ident),
        outcomes=reader.pairs("outcomes", ident),
        failures_by_class=reader.pairs("failures_by_class", ident),
        attempts=reader.pairs("attempts", ident),
        steps=_steps(reader.frame("job_runs", ident), row),
        snapshots=_snapshots(reader, row),
        worker_hour_usd=settings.worker_hour_prices(),
    )


def _steps(job_runs: pd.DataFrame | None, ledger: dict[str, Any]) -> list[StepRun]:
    """The recorded runs; an ingest without a recorded run gets the ledger's own time."""
    steps = [
        StepRun(
            step=str(run["step"]),
            run_id=str(run["run_id"]),
            compute=str(run["compute"]),
            workers=_int(run["workers"]),
            records=_int(run["records"]),
            seconds=_float(run["duration_seconds"]) or 0.0,
            other_ingests=_int(run["run_ingests"]) - 1,
        )
        for run in ([] if job_runs is None else job_runs.to_dict("records"))
    ]
    if not any(run.step == INGEST_STEP for run in steps):
        ingest = StepRun(
            step=INGEST_STEP,
            run_id="",
            compute=None,
            workers=None,
            records=_int(ledger["lines_read"]),
            seconds=_float(ledger["duration_seconds"]) or 0.0,
        )
        steps.insert(0, ingest)
    return steps


def _snapshots(reader: _Reader, ledger: dict[str, Any]) -> list[dict[str, Any]]:
    """Every snapshot of the two ingest tables, marking the ones this ingest committed."""
    mine = {ledger.get("transactions_snapshot_id"), ledger.get("rejected_snapshot_id")}
    rows = []
    for table in ("transactions", "rejected_records"):
        frame = reader.frame(f"{table}_snapshots", str(ledger["ingest_id"]))
        if frame is None:
            continue
        for snapshot_id, committed_at in frame.itertuples(index=False):
            rows.append(
                {
                    "table": table,
                    "snapshot_id": int(snapshot_id),
                    "committed_at": utc_text(committed_at),
                    "this_ingest": int(snapshot_id) in mine,
                }
            )
    return rows


@dataclass(frozen=True)
class StreamBatch:
    """One micro-batch of a stream as its ledger row tells it."""

    ingest_id: str
    status: str
    # Per partition, the first offset read and the one after the last (`source_version`).
    offsets: dict[int, tuple[int, int]]
    records: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    started_at: str
    finished_at: str
    duration_seconds: float | None

    def offsets_text(self) -> str:
        """`partition:first-last` per partition, as `stream run` logs a batch's ranges."""
        return describe_offsets(self.offsets)


@dataclass(frozen=True)
class StreamFacts:
    """One stream (one topic): its batches summed up, its processing, its newest batches."""

    source: str
    batches: int
    other_batches: int
    first_started_at: str
    last_finished_at: str
    period_seconds: float
    records: int
    accepted: int
    rejected: int
    batch_seconds: float
    median_batch_seconds: float
    p95_batch_seconds: float
    rejects_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    failures_by_class: list[tuple[str, int]]
    attempts: list[tuple[str, int]]
    median_processing_delay_seconds: float | None
    p95_processing_delay_seconds: float | None
    # At most RECENT_BATCHES, newest first, whatever their status.
    recent: list[StreamBatch]

    @property
    def topic(self) -> str:
        return self.source.removeprefix(STREAM_SCHEME)

    @property
    def records_per_second(self) -> float:
        """Over the stream's period, from the first batch's start to the last one's end."""
        return self.records / self.period_seconds if self.period_seconds else 0.0

    @property
    def records_per_batch_second(self) -> float:
        """While a batch was running: what the ingest itself sustains."""
        return self.records / self.batch_seconds if self.batch_seconds else 0.0

    @property
    def processed(self) -> int:
        return sum(count for _, count in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(count for _, count in self.failures_by_class)

    @property
    def awaiting_processing(self) -> int:
        """Accepted records with neither a result nor a dead letter yet."""
        return self.accepted - self.processed - self.failed

    @property
    def last_batch(self) -> StreamBatch | None:
        """The newest completed batch among the recent ones."""
        return next((batch for batch in self.recent if batch.status == COMPLETED), None)


def describe_offsets(offsets: dict[int, tuple[int, int]]) -> str:
    return ", ".join(f"{p}:{first}-{end - 1}" for p, (first, end) in sorted(offsets.items()))


def parse_offsets(source_version: object) -> dict[int, tuple[int, int]]:
    """A batch's `source_version`, `{"partition": [first, last + 1]}`, as numbers."""
    if not isinstance(source_version, str) or not source_version:
        return {}
    ranges = json.loads(source_version)
    return {int(p): (int(r[0]), int(r[1])) for p, r in ranges.items()}


def gather_streams(settings: Settings, athena: AthenaClient | None = None) -> list[StreamFacts]:
    """Every stream in the ledger, by topic; empty when no stream ever ran."""
    reader = _Reader(settings, athena)
    summary = reader.run(STREAM_SQL["stream_batches"])
    if summary is None or summary.empty:
        return []
    recent = _by_stream(reader.run(STREAM_SQL["stream_recent_batches"]))
    per_stream = {
        name: _by_stream(reader.run(STREAM_SQL[f"stream_{name}"]))
        for name in ("rejects_by_reason", "outcomes", "failures_by_class", "attempts")
    }
    delays = _by_stream(reader.run(STREAM_SQL["stream_processing_delay"]))
    streams = []
    for row in summary.to_dict("records"):
        source = str(row["source_file"])
        delay = delays.get(source, [])
        first, last = row["first_started_at"], row["last_finished_at"]
        streams.append(
            StreamFacts(
                source=source,
                batches=_int(row["batches"]),
                other_batches=_int(row["other_batches"]),
                first_started_at=utc_text(first) if _known(first) else "",
                last_finished_at=utc_text(last) if _known(last) else "",
                period_seconds=_seconds_between(first, last),
                records=_int(row["records"]),
                accepted=_int(row["accepted"]),
                rejected=_int(row["rejected"]),
                batch_seconds=_float(row["batch_seconds"]) or 0.0,
                median_batch_seconds=_float(row["median_batch_seconds"]) or 0.0,
                p95_batch_seconds=_float(row["p95_batch_seconds"]) or 0.0,
                **{
                    name: [_pair(row) for row in rows.get(source, [])]
                    for name, rows in per_stream.items()
                },
                median_processing_delay_seconds=_float(delay[0]["median_seconds"])
                if delay
                else None,
                p95_processing_delay_seconds=_float(delay[0]["p95_seconds"]) if delay else None,
                recent=[_batch(batch) for batch in recent.get(source, [])],
            )
        )
    return streams


def _by_stream(frame: pd.DataFrame | None) -> dict[str, list[dict[str, Any]]]:
    """The rows of a frame whose first column names the stream, per stream, without it."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    if frame is None:
        return grouped
    stream, *columns = frame.columns
    for row in frame.to_dict("records"):
        grouped.setdefault(str(row[stream]), []).append({c: row[c] for c in columns})
    return grouped


def _pair(row: dict[str, Any]) -> tuple[str, int]:
    """(key, records) of a per-stream count's row."""
    key, count = row.values()
    return str(key), _int(count)


def _batch(row: dict[str, Any]) -> StreamBatch:
    reasons = row["rejected_by_reason"]
    return StreamBatch(
        ingest_id=str(row["ingest_id"]),
        status=str(row["status"]),
        offsets=parse_offsets(row["source_version"]),
        records=_int(row["lines_read"]),
        accepted=_int(row["accepted"]),
        rejected=_int(row["rejected"]),
        rejected_by_reason={str(k): int(v) for k, v in dict(reasons or {}).items()},
        started_at=utc_text(row["started_at"]) if _known(row["started_at"]) else "",
        finished_at=utc_text(row["finished_at"]) if _known(row["finished_at"]) else "",
        duration_seconds=_float(row["duration_seconds"]),
    )


def _known(value: object) -> bool:
    import pandas as pd

    return value is not None and not bool(pd.isna(value))


def _int(value: object) -> int:
    return int(value) if _known(value) else 0  # type: ignore[call-overload]


def _float(value: object) -> float | None:
    return float(value) if _known(value) else None  # type: ignore[arg-type]


def _seconds_between(first: object, last: object) -> float:
    import pandas as pd

    if not (_known(first) and _known(last)):
        return 0.0
    return float((pd.Timestamp(last) - pd.Timestamp(first)).total_seconds())


def utc_text(stamp: object) -> str:
    import pandas as pd

    moment = pd.Timestamp(stamp)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC")
    text: str = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] + " UTC"
