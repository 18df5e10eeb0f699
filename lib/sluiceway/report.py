"""`sluiceway report`: one self-contained HTML page about one ingest and its processing.

Why one file with inline SVG charts: it is attached to a ticket or mailed to the partner and
must open anywhere, offline, with no scripts or external assets. The numbers come from
`report_facts`; this module only lays them out.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from sluiceway.query_athena import AthenaClient
from sluiceway.report_facts import (
    DEFAULT_JOB_DPUS,
    GLUE_DPU_HOUR_USD,
    GLUE_MINIMUM_SECONDS,
    RunFacts,
    gather,
    utc_text,
)
from sluiceway.settings import Settings


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
{html.escape(utc_text(led["finished_at"]))}; generated {stamp}.</p>
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
