"""`sluiceway report`: one self-contained HTML page about one ingest and its processing.

Why one file with inline SVG charts: it is attached to a ticket or mailed to the partner and
must open anywhere, offline, with no scripts or external assets. Everything comes from the
tables through the query helper, so the report describes what was committed, not logs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sluiceway.errors import SluicewayError
from sluiceway.query import connect, current_metadata, query
from sluiceway.settings import Settings

# AWS Glue price per DPU-hour (us-east-1, Spark jobs, Glue 2.0+), source:
# https://aws.amazon.com/glue/pricing/ (checked 2026). Glue bills per second, 1-minute minimum.
GLUE_DPU_HOUR_USD = 0.44
GLUE_MINIMUM_SECONDS = 60
# infra/cloudformation/pipeline.yaml defaults: 10 G.1X workers (1 DPU each) for ingest and
# processing.
DEFAULT_JOB_DPUS = 10


@dataclass(frozen=True)
class RunFacts:
    """The numbers the report shows, gathered once so tests can check them directly."""

    ingest_id: str
    ledger: dict
    transactions_rows: int
    rejected_rows: int
    rejects_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    failures_by_class: list[tuple[str, int]]
    attempts: list[tuple[str, int]]
    processing_seconds: float
    snapshots: list[dict]

    @property
    def reconciled(self) -> bool:
        """lines = accepted + rejected, and both tables hold exactly what the ledger says."""
        led = self.ledger
        return (
            led["lines_read"] == led["accepted"] + led["rejected"]
            and self.transactions_rows == led["accepted"]
            and self.rejected_rows == led["rejected"]
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


def _pairs(settings: Settings, sql: str) -> list[tuple[str, int]]:
    frame = query(settings, sql)
    return [(str(row[0]), int(row[1])) for row in frame.itertuples(index=False)]


def _has_table(settings: Settings, name: str) -> bool:
    return current_metadata(settings, name) is not None


def gather(settings: Settings, ingest_id: str | None = None) -> RunFacts:
    """Read the facts of one ingest (default: the latest completed one) from the tables."""
    if settings.warehouse.startswith("s3://"):
        raise SluicewayError(
            "sluiceway report reads a local warehouse; on AWS run it where the warehouse is "
            "mounted or use the notebooks with the Athena query helper"
        )
    if not _has_table(settings, "ingest_ledger"):
        raise SluicewayError(
            f"no ingest_ledger in {settings.warehouse}; run `sluiceway ingest FILE` first"
        )
    where = f"ingest_id = '{ingest_id.replace(chr(39), '')}'" if ingest_id else "TRUE"
    ledger = query(
        settings,
        f"SELECT * FROM ingest_ledger WHERE {where} AND status = 'completed' "
        "ORDER BY finished_at DESC LIMIT 1",
    )
    if ledger.empty:
        raise SluicewayError(
            f"no completed ingest {ingest_id or ''} in {settings.warehouse}; list them with "
            '`sluiceway query "SELECT ingest_id, status FROM ingest_ledger"`'
        )
    row = ledger.iloc[0].to_dict()
    ident = row["ingest_id"]
    by_ingest = f"WHERE ingest_id = '{ident}'"
    count = f"SELECT COUNT(*) FROM {{}} {by_ingest}"
    processed = _has_table(settings, "processed_transactions")
    failures = _has_table(settings, "processing_failures")
    span = (
        query(
            settings,
            "SELECT epoch(MAX(processed_at)) - epoch(MIN(processed_at)) "
            f"FROM processed_transactions {by_ingest}",
        ).iloc[0, 0]
        if processed
        else None
    )
    return RunFacts(
        ingest_id=ident,
        ledger=row,
        transactions_rows=int(query(settings, count.format("transactions")).iloc[0, 0]),
        rejected_rows=int(query(settings, count.format("rejected_records")).iloc[0, 0]),
        rejects_by_reason=_pairs(
            settings,
            "SELECT reason, COUNT(*) FROM (SELECT unnest(reasons) AS reason FROM "
            f"rejected_records {by_ingest}) GROUP BY 1 ORDER BY 2 DESC, 1",
        ),
        outcomes=_pairs(
            settings,
            f"SELECT result, COUNT(*) FROM processed_transactions {by_ingest} "
            "GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        if processed
        else [],
        failures_by_class=_pairs(
            settings,
            f"SELECT error_class, COUNT(*) FROM processing_failures {by_ingest} "
            "GROUP BY 1 ORDER BY 2 DESC, 1",
        )
        if failures
        else [],
        attempts=_pairs(
            settings,
            f"SELECT CAST(attempts AS VARCHAR), COUNT(*) FROM processed_transactions "
            f"{by_ingest} GROUP BY attempts ORDER BY attempts",
        )
        if processed
        else [],
        processing_seconds=float(span or 0.0),
        snapshots=_snapshots(settings, row),
    )


def _snapshots(settings: Settings, ledger: dict) -> list[dict]:
    """Every snapshot of the two ingest tables, marking the ones this ingest committed."""
    mine = {ledger.get("transactions_snapshot_id"), ledger.get("rejected_snapshot_id")}
    connection = connect()
    rows = []
    for table in ("transactions", "rejected_records"):
        metadata = current_metadata(settings, table)
        if metadata is None:
            continue
        frame = connection.execute(
            f"SELECT snapshot_id, timestamp_ms FROM iceberg_snapshots('{metadata}') "
            "ORDER BY timestamp_ms"
        ).fetchdf()
        for snapshot_id, stamp in frame.itertuples(index=False):
            rows.append(
                {
                    "table": table,
                    "snapshot_id": int(snapshot_id),
                    "committed_at": str(stamp),
                    "this_ingest": int(snapshot_id) in mine,
                }
            )
    return rows


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
        ["", "ledger", "table rows"],
        [
            ["lines read", f"{led['lines_read']:,}", ""],
            ["accepted", f"{led['accepted']:,}", f"{facts.transactions_rows:,} (transactions)"],
            ["rejected", f"{led['rejected']:,}", f"{facts.rejected_rows:,} (rejected_records)"],
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
{html.escape(str(led["finished_at"]))}; generated {stamp}.</p>
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


def write_report(settings: Settings, out: str | Path, ingest_id: str | None = None) -> RunFacts:
    """Gather the facts of an ingest and write the HTML report to `out`."""
    facts = gather(settings, ingest_id)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(facts), encoding="utf-8")
    return facts
