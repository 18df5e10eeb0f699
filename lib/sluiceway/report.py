"""`sluiceway report`: one self-contained HTML page about one ingest and its processing, and
a Streams section summing up each Kafka stream's micro-batches (one ledger row each).

Why one file with inline SVG charts: it is attached to a ticket or mailed to the partner and
must open anywhere, offline, with no scripts or external assets. The numbers come from
`report_facts`; this module only lays them out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sluiceway.query_athena import AthenaClient
from sluiceway.report_facts import (
    RECENT_BATCHES,
    STREAM_SCHEME,
    RunFacts,
    StepRun,
    StreamFacts,
    describe_offsets,
    gather,
    gather_streams,
    parse_offsets,
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


def _table(
    headers: list[str], rows: list[list[object]], table_id: str = "", css_class: str = ""
) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    ident += f' class="{css_class}"' if css_class else ""
    return f"<table{ident}><tr>{head}</tr>{body}</table>"


BATCH_HEADERS = [
    "ingest", "started (UTC)", "finished (UTC)", "offsets", "records", "accepted", "rejected",
    "seconds", "status",
]  # fmt: skip


def _rejected_text(rejected: int, by_reason: dict[str, int]) -> str:
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(by_reason.items()))
    return f"{rejected:,} ({reasons})" if reasons else f"{rejected:,}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _stream_section(stream: StreamFacts) -> str:
    """One stream: its batches summed up, its processing, its newest batches one by one."""
    last = stream.last_batch
    other = f" ({stream.other_batches:,} more failed or unfinished)" if stream.other_batches else ""
    summary = _table(
        ["", "the stream"],
        [
            ["completed batches", f"{stream.batches:,}{other}"],
            ["first batch started", stream.first_started_at],
            ["last batch finished", stream.last_finished_at],
            ["Kafka records", f"{stream.records:,}"],
            ["accepted records", f"{stream.accepted:,}"],
            ["rejected records", f"{stream.rejected:,}"],
            ["records / second over the period", f"{stream.records_per_second:,.1f}"],
            ["records / second while a batch ran", f"{stream.records_per_batch_second:,.0f}"],
            [
                "batch seconds, median / p95",
                f"{stream.median_batch_seconds:.1f} / {stream.p95_batch_seconds:.1f}",
            ],
            [
                "last batch's offsets (partition:first-last)",
                f"{last.offsets_text()} ({last.ingest_id})" if last else "",
            ],
            ["processed", f"{stream.processed:,} (processed_transactions)"],
            ["dead letters", f"{stream.failed:,} (processing_failures)"],
            ["accepted, awaiting processing", f"{stream.awaiting_processing:,}"],
            [
                "seconds from a batch's end to its last result, median / p95",
                f"{_seconds(stream.median_processing_delay_seconds)} / "
                f"{_seconds(stream.p95_processing_delay_seconds)}"
                if stream.median_processing_delay_seconds is not None
                else "",
            ],
        ],
        f"stream-{stream.topic}",
    )
    batches = _table(
        BATCH_HEADERS,
        [
            [
                batch.ingest_id,
                batch.started_at.removesuffix(" UTC"),
                batch.finished_at.removesuffix(" UTC"),
                batch.offsets_text(),
                f"{batch.records:,}",
                f"{batch.accepted:,}",
                _rejected_text(batch.rejected, batch.rejected_by_reason),
                _seconds(batch.duration_seconds),
                batch.status,
            ]
            for batch in stream.recent
        ],
        f"stream-{stream.topic}-batches",
        "batches",
    )
    source = html.escape(stream.source)
    return f"""<h3>Stream <code>{source}</code></h3>
{summary}
{bar_chart(f"Rejected records of {stream.source} by reason", stream.rejects_by_reason)}
{bar_chart(f"Processed records of {stream.source} by result", stream.outcomes)}
{bar_chart(f"Processing failures of {stream.source} by error class", stream.failures_by_class)}
{bar_chart(f"Processed records of {stream.source} by attempts", stream.attempts)}
<h4>The {len(stream.recent)} most recent batches (newest first)</h4>
{batches}"""


def _streams(streams: Sequence[StreamFacts]) -> str:
    if not streams:
        return ""
    sections = "\n".join(_stream_section(stream) for stream in streams)
    return f"""<h2 id="streams">Streams</h2>
<p>Each micro-batch of a stream is one ingest with its own ledger row; they are summed up here
per topic, with at most {RECENT_BATCHES} most recent batches listed, rather than as files.
Percentiles are approximate.</p>
{sections}
"""


TIMING_HEADERS = [
    "step", "run", "compute", "workers", "seconds", "records", "records / second", "cost (USD)",
]  # fmt: skip


def _step_row(run: StepRun, prices: dict[str, float]) -> list[object]:
    shared = f" (shared with {run.other_ingests:,} other ingests)" if run.other_ingests else ""
    cost = run.cost_usd(prices)
    return [
        run.step + shared,
        run.run_id[:12] or "not recorded",
        run.compute or "",
        "" if run.workers is None else f"{run.workers:,}",
        f"{run.seconds:.1f}",
        f"{run.records:,}",
        f"{run.records_per_second:,.0f}",
        "" if cost is None else f"${cost:.4f}",
    ]


def _timings(facts: RunFacts) -> str:
    """Each run's own wall time, throughput and cost, as `job_runs` and the ledger recorded
    them, and how the cost is computed."""
    prices = dict(facts.worker_hour_usd)
    rows = _table(TIMING_HEADERS, [_step_row(run, prices) for run in facts.steps], "timings")
    used = sorted({run.compute for run in facts.steps if run.compute})
    price_text = ", ".join(
        f"{html.escape(compute)} ${prices[compute]:g}" if compute in prices
        else f"{html.escape(compute)} no price"
        for compute in used
    )  # fmt: skip
    bound = "" if facts.cost_complete else "at least "
    shared = (
        " A run shared with other ingests is counted whole in each of their reports."
        if any(run.other_ingests for run in facts.steps)
        else ""
    )
    return f"""{rows}
<p id="cost">${facts.cost_usd():.4f} in all ({bound}the runs above): each run's seconds × its
workers × the price of a worker-hour where it ran ({price_text or "no recorded runs"}; the
setting <code>worker_hour_usd</code> overrides these prices).
Seconds are each run's own, from its start to its end; AWS also bills a job's start-up and
a minimum (Glue: 1 minute).{shared}</p>"""


def render(
    facts: RunFacts, generated_at: datetime | None = None, streams: Sequence[StreamFacts] = ()
) -> str:
    """The report as one HTML document."""
    led = facts.ledger
    status = "reconciled" if facts.reconciled else "NOT reconciled"
    is_batch = str(led["source_file"]).startswith(STREAM_SCHEME)
    counts = _table(
        ["", "ledger", "in the tables"],
        [
            [
                "Kafka records" if is_batch else "lines after the header",
                f"{led['lines_read']:,}",
                "",
            ],
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
    timings = _timings(facts)
    snapshots = _table(
        ["table", "snapshot", "committed", "this ingest"],
        [
            [s["table"], s["snapshot_id"], s["committed_at"], "yes" if s["this_ingest"] else ""]
            for s in facts.snapshots
        ],
    )
    stamp = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    source = f"<code>{html.escape(str(led['source_file']))}</code>"
    if is_batch:
        offsets = describe_offsets(parse_offsets(led.get("source_version")))
        source = f"stream batch of {source} (offsets {html.escape(offsets)})"
    stream_note = ""
    if streams:
        topics = ", ".join(f"<code>{html.escape(s.source)}</code>" for s in streams)
        stream_note = f" The Streams section below sums up {topics}."
        snapshot_note = (
            "<p>Snapshots committed by stream batches (one per table and batch) are not listed "
            "here; see Streams.</p>"
        )
    else:
        snapshot_note = ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sluiceway run {html.escape(facts.ingest_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
table.batches {{ font-size: 12px; }} table.batches td, table.batches th {{ padding: 2px 5px; }}
.ok {{ color: #1a7f37; }} .bad {{ color: #b42318; }}
</style></head><body>
<h1>Run report: {html.escape(facts.ingest_id)}</h1>
<p>Source {source}, ingested
{html.escape(utc_text(led["finished_at"]))}; generated {stamp}.{stream_note}</p>
<h2>Counts and reconciliation</h2>
<p class="{"ok" if facts.reconciled else "bad"}" id="reconciliation">{status}</p>
{counts}
<h2>Rejects by reason</h2>
{bar_chart("Rejected records by reason", facts.rejects_by_reason)}
<h2>Processing outcomes</h2>
{bar_chart("Processed records by result", facts.outcomes)}
{bar_chart("Processing failures by error class", facts.failures_by_class)}
{bar_chart("Processed records by attempts", facts.attempts)}
<h2>Timings, throughput and cost</h2>
{timings}
<h2>Iceberg snapshots</h2>
{snapshots}
{snapshot_note}
{_streams(streams)}
</body></html>
"""


def write_report(
    settings: Settings,
    out: str | Path,
    ingest_id: str | None = None,
    athena: AthenaClient | None = None,
) -> RunFacts:
    """Gather the facts of an ingest and of every stream and write the HTML report to `out`."""
    facts = gather(settings, ingest_id, athena)
    streams = gather_streams(settings, athena)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(facts, streams=streams), encoding="utf-8")
    return facts
