"""`sluiceway report`: one self-contained HTML page about one ingest and its processing.

Why one file with inline SVG charts: it is attached to a ticket or mailed to the partner and
must open anywhere, offline, with no scripts or external assets. Everything comes from the
tables through the query helper (Athena for an s3:// warehouse, DuckDB locally), with every
query written once in Athena's dialect (REPORT_SQL), so the report describes what was
committed, not logs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sluiceway.errors import SluicewayError
from sluiceway.query import AthenaClient, existing_tables, is_athena, query
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED

# AWS Glue price per DPU-hour (us-east-1, Spark jobs, Glue 2.0+), source:
# https://aws.amazon.com/glue/pricing/ (checked 2026). Glue bills per second, 1-minute minimum.
GLUE_DPU_HOUR_USD = 0.44
GLUE_MINIMUM_SECONDS = 60
# infra/cloudformation/pipeline.yaml defaults: 10 G.1X workers (1 DPU each) for ingest and
# processing.
DEFAULT_JOB_DPUS = 10


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

# Every query the report runs, one text for Athena and (transpiled) DuckDB.
REPORT_SQL: dict[str, ReportQuery] = {
    # An empty ingest id means the latest completed ingest.
    "ledger": ReportQuery(
        "ingest_ledger",
        f"SELECT * FROM ingest_ledger WHERE status = '{COMPLETED}' "
        "AND ('{ingest_id}' = '' OR ingest_id = '{ingest_id}') ORDER BY finished_at DESC LIMIT 1",
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
    "processing_seconds": ReportQuery(
        "processed_transactions",
        "SELECT to_unixtime(MAX(processed_at)) - to_unixtime(MIN(processed_at)) AS seconds "
        f"FROM processed_transactions {_BY_INGEST}",
    ),
    # Iceberg metadata tables, Athena's syntax (pyiceberg provides them locally).
    "transactions_snapshots": ReportQuery(
        "transactions",
        'SELECT snapshot_id, committed_at FROM "transactions$snapshots" ORDER BY committed_at',
    ),
    "rejected_records_snapshots": ReportQuery(
        "rejected_records",
        'SELECT snapshot_id, committed_at FROM "rejected_records$snapshots" ORDER BY committed_at',
    ),
}


@dataclass(frozen=True)
class RunFacts:
    """The numbers the report shows, gathered once so tests can check them directly."""

    ingest_id: str
    ledger: dict
    transactions_rows: int
    rejected_rows: int
    transactions_lines: int
    rejected_lines: int
    rejects_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    failures_by_class: list[tuple[str, int]]
    attempts: list[tuple[str, int]]
    processing_seconds: float
    snapshots: list[dict]

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

    def estimated_cost_usd(self, dpus: int = DEFAULT_JOB_DPUS) -> float:
        """Glue cost of the ingest and processing jobs at `dpus` each."""
        billed = [
            max(float(self.ledger["duration_seconds"] or 0), GLUE_MINIMUM_SECONDS),
            max(self.processing_seconds, GLUE_MINIMUM_SECONDS) if self.processed else 0.0,
        ]
        return sum(billed) / 3600 * dpus * GLUE_DPU_HOUR_USD


class _Reader:
    """Runs the report's queries for one ingest, skipping those whose table is absent."""

    def __init__(self, settings: Settings, athena: AthenaClient | None) -> None:
        self.settings = settings
        self.athena = athena
        self.tables = existing_tables(settings, athena)

    def frame(self, name: str, ingest_id: str):  # -> pandas.DataFrame | None
        report_query = REPORT_SQL[name]
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
    (processing_seconds,) = reader.numbers("processing_seconds", ident, 1)
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
        processing_seconds=processing_seconds,
        snapshots=_snapshots(reader, row),
    )


def _snapshots(reader: _Reader, ledger: dict) -> list[dict]:
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
                    "committed_at": _utc_text(committed_at),
                    "this_ingest": int(snapshot_id) in mine,
                }
            )
    return rows


def _utc_text(stamp: object) -> str:
    import pandas as pd

    moment = pd.Timestamp(stamp)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def bar_chart(title: str, pairs: list[tuple[str, int]], width: int = 560) -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external files)."""
    if not pairs:
        return f"<p class='empty'>{html.escape(title)}: none</p>"
    top = max(count for _, count in pairs) or 1
    bar_h, label_w, gap = 20, 190, 6
    height = len(pairs) * (bar_h + gap) + 30
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(title)}'>",
        f"<text x='0' y='16' font-weight='bold'>{html.escape(title)}</text>",
    ]
    for index, (label, count) in enumerate(pairs):
        y = 26 + index * (bar_h + gap)
        length = max(1, int((width - label_w - 70) * count / top))
        parts.append(
            f"<text x='0' y='{y + 15}' font-size='12'>{html.escape(label)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{length}' height='{bar_h}' fill='#3b6ea5'/>"
            f"<text x='{label_w + length + 6}' y='{y + 15}' font-size='12'>{count:,}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(facts: RunFacts, generated_at: datetime | None = None) -> str:
    """The report as one HTML document."""
    led = facts.ledger
    seconds = float(led["duration_seconds"] or 0.0)
    throughput = led["lines_read"] / seconds if seconds else 0.0
    status = "reconciled" if facts.reconciled else "NOT reconciled"
    counts = _table(
        ["", "ledger", "in the tables"],
        [
            ["lines after the header", f"{led['lines_read']:,}", ""],
            [
                "accepted records",
                f"{led['accepted']:,}",
                f"{facts.transactions_rows:,} (transactions)",
            ],
            ["accepted lines", f"{led['accepted_lines']:,}", f"{facts.transactions_lines:,}"],
            [
                "rejected records",
                f"{led['rejected']:,}",
                f"{facts.rejected_rows:,} (rejected_records)",
            ],
            ["rejected lines", f"{led['rejected_lines']:,}", f"{facts.rejected_lines:,}"],
            ["processed", "", f"{facts.processed:,} (processed_transactions)"],
            ["failed", "", f"{facts.failed:,} (processing_failures)"],
        ],
    )
    timings = _table(
        ["step", "seconds", "records / second"],
        [
            ["ingest", f"{seconds:.1f}", f"{throughput:,.0f}"],
            [
                "processing (first to last result)",
                f"{facts.processing_seconds:.1f}",
                f"{facts.processed / facts.processing_seconds:,.0f}"
                if facts.processing_seconds
                else "",
            ],
        ],
    )
    snapshots = _table(
        ["table", "snapshot", "committed", "this ingest"],
        [
            [s["table"], s["snapshot_id"], s["committed_at"], "yes" if s["this_ingest"] else ""]
            for s in facts.snapshots
        ],
    )
    stamp = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    cost = facts.estimated_cost_usd()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sluiceway run {html.escape(facts.ingest_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
.ok {{ color: #1a7f37; }} .bad {{ color: #b42318; }}
</style></head><body>
<h1>Run report: {html.escape(facts.ingest_id)}</h1>
<p>Source <code>{html.escape(str(led["source_file"]))}</code>, ingested
{html.escape(_utc_text(led["finished_at"]))}; generated {stamp}.</p>
<h2>Counts and reconciliation</h2>
<p class="{"ok" if facts.reconciled else "bad"}" id="reconciliation">{status}</p>
{counts}
<h2>Rejects by reason</h2>
{bar_chart("Rejected records by reason", facts.rejects_by_reason)}
<h2>Processing outcomes</h2>
{bar_chart("Processed records by result", facts.outcomes)}
{bar_chart("Processing failures by error class", facts.failures_by_class)}
{bar_chart("Processed records by attempts", facts.attempts)}
<h2>Timings and throughput</h2>
{timings}
<h2>Iceberg snapshots</h2>
{snapshots}
<h2>Estimated AWS cost</h2>
<p id="cost">${cost:.4f}: ingest and processing on AWS Glue at {DEFAULT_JOB_DPUS} DPU each,
${GLUE_DPU_HOUR_USD}/DPU-hour, billed per second with a {GLUE_MINIMUM_SECONDS}-second minimum
(local timings; Glue start-up time not included).</p>
</body></html>
"""


def write_report(
    settings: Settings,
    out: str | Path,
    ingest_id: str | None = None,
    athena: AthenaClient | None = None,
) -> RunFacts:
    """Gather the facts of an ingest and write the HTML report to `out`."""
    facts = gather(settings, ingest_id, athena)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(facts), encoding="utf-8")
    return facts
