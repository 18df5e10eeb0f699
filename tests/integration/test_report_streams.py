"""The run report with a stream: a landing file and two micro-batches of one topic (through
`stream.batch.ingest_batch`, no broker) give one Streams entry with both batches, their offsets
and counts, while the file is still the report's ingest and the batches are no files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest

from fixtures.analytics import assert_athena_sql
from sluiceway.cli import main
from sluiceway.ingest.run import IngestResult
from sluiceway.report_facts import (
    STREAM_SCHEME,
    STREAM_SQL,
    describe_offsets,
    gather,
    gather_streams,
)
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED
from sluiceway.stream.offsets import SCHEME, OffsetRanges, stream_source

pytestmark = pytest.mark.integration

TOPIC = "card-payments"


def kafka_table(values: list[bytes], partitions: int, first_offset: int) -> pa.Table:
    """Values round-robin over partitions, offsets counting up per partition."""
    return pa.table(
        {
            "partition": pa.array([i % partitions for i in range(len(values))], pa.int32()),
            "offset": pa.array([first_offset + i // partitions for i in range(len(values))]),
            "value": pa.array(values, pa.binary()),
        }
    )


@dataclass(frozen=True)
class MixedWarehouse:
    settings: Settings
    landing: Path
    file: IngestResult
    batches: list[IngestResult]


@pytest.fixture(scope="module")
def mixed_warehouse(
    spark, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> MixedWarehouse:
    """A landing file first, then two batches of 20 records over partitions 0 and 1 (offsets
    0-9, then 10-19), all processed: the batches are newer than the file. In a namespace of
    its own, built once for the module's tests (which only read it)."""
    import dataclasses

    from sluiceway.generate import generate_landing_file, generate_records
    from sluiceway.ingest import ingest_file
    from sluiceway.processing import ProcessOptions, process_records
    from sluiceway.stream.batch import KafkaBatch, ingest_batch

    settings = dataclasses.replace(settings, namespace="report_streams")
    landing = tmp_path_factory.mktemp("report_streams") / "partner_2026-01-05.csv"
    generate_landing_file(landing, 60, seed=6, defect_rate=0.05, first_id=1_000_000)
    file = ingest_file(spark, settings, str(landing))
    assert file.status == COMPLETED, file.message
    values, _ = generate_records(40, seed=12, defect_rate=0.1)
    batches = []
    for first_offset, chunk in ((0, values[:20]), (10, values[20:])):
        batch = KafkaBatch.of(TOPIC, kafka_table(chunk, partitions=2, first_offset=first_offset))
        result = ingest_batch(spark, settings, batch)
        assert result.status == COMPLETED, result.message
        batches.append(result)
    for ingest in (file, *batches):
        process_records(spark, settings, ProcessOptions(), ingest_id=ingest.ingest_id)
    return MixedWarehouse(settings, landing, file, batches)


class _Tables(HTMLParser):
    """The text of every table cell, per table id, row by row; and the h1's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.h1 = ""
        self._table = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self.tables[self._table][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        self._in.pop()

    def handle_data(self, data: str) -> None:
        if "h1" in self._in:
            self.h1 += data
        elif self._in and self._in[-1] in ("td", "th"):
            self.tables[self._table][-1][-1] += data


def test_the_report_names_kafka_sources_as_the_stream_package_does() -> None:
    assert STREAM_SCHEME == SCHEME
    assert stream_source(TOPIC).startswith(STREAM_SCHEME)
    ranges = OffsetRanges(TOPIC, {1: (10, 20), 0: (0, 5)})
    assert describe_offsets(dict(ranges.ranges)) == ranges.describe() == "0:0-4, 1:10-19"


@pytest.mark.parametrize("name", sorted(STREAM_SQL))
def test_stream_query_is_athena_sql(name: str) -> None:
    assert_athena_sql(STREAM_SQL[name].render(""))


def test_report_sums_up_a_streams_batches_and_keeps_the_file_as_the_ingest(
    mixed_warehouse: MixedWarehouse,
) -> None:
    built = mixed_warehouse
    first, second = built.batches

    facts = gather(built.settings)
    assert facts.ingest_id == built.file.ingest_id  # the file, though both batches are newer
    assert facts.reconciled
    # Only the file's snapshots: the batches' commits are not listed as if they were files'.
    assert [s["this_ingest"] for s in facts.snapshots] == [True, True]

    (stream,) = gather_streams(built.settings)
    assert stream.source == f"kafka://{TOPIC}" and stream.topic == TOPIC
    assert (stream.batches, stream.other_batches) == (2, 0)
    assert stream.records == 40 == first.lines_read + second.lines_read
    assert stream.accepted == first.accepted + second.accepted
    assert stream.rejected == first.rejected + second.rejected > 0
    reasons = Counter(first.rejected_by_reason) + Counter(second.rejected_by_reason)
    assert dict(stream.rejects_by_reason) == dict(reasons)
    assert [b.ingest_id for b in stream.recent] == [second.ingest_id, first.ingest_id]
    assert [b.offsets for b in stream.recent] == [
        {0: (10, 20), 1: (10, 20)},
        {0: (0, 10), 1: (0, 10)},
    ]
    assert [(b.records, b.accepted, b.rejected) for b in stream.recent] == [
        (r.lines_read, r.accepted, r.rejected) for r in (second, first)
    ]
    assert stream.last_batch is not None and stream.last_batch.ingest_id == second.ingest_id
    durations = [b.duration_seconds or 0.0 for b in stream.recent]
    assert min(durations) <= stream.median_batch_seconds <= max(durations)
    assert stream.batch_seconds == pytest.approx(sum(durations))
    assert stream.period_seconds >= stream.batch_seconds > 0
    assert stream.records_per_second == pytest.approx(40 / stream.period_seconds)
    assert stream.processed + stream.failed == stream.accepted
    assert stream.awaiting_processing == 0
    assert stream.median_processing_delay_seconds is not None


def test_report_html_lists_the_streams_batches_and_the_file_as_a_file(
    mixed_warehouse: MixedWarehouse, tmp_path: Path
) -> None:
    built = mixed_warehouse
    first, second = built.batches
    out = tmp_path / "report.html"
    settings = ["--warehouse", built.settings.warehouse, "--namespace", built.settings.namespace]
    assert main(["report", "--out", str(out), *settings]) == 0
    page = out.read_text(encoding="utf-8")
    parser = _Tables()
    parser.feed(page)
    parser.close()

    assert built.file.ingest_id in parser.h1
    assert f"Source <code>{built.landing}</code>" in page
    assert '<h2 id="streams">Streams</h2>' in page
    summary = dict(parser.tables[f"stream-{TOPIC}"][1:])
    assert summary["completed batches"] == "2"
    assert summary["Kafka records"] == "40"
    assert summary["accepted records"] == str(first.accepted + second.accepted)
    assert summary["rejected records"] == str(first.rejected + second.rejected)
    assert summary["last batch's offsets (partition:first-last)"] == (
        f"0:10-19, 1:10-19 ({second.ingest_id})"
    )
    header, *rows = parser.tables[f"stream-{TOPIC}-batches"]
    assert header[:5] == ["ingest", "started (UTC)", "finished (UTC)", "offsets", "records"]
    assert [(row[0], row[3], row[4], row[5], row[8]) for row in rows] == [
        (second.ingest_id, "0:10-19, 1:10-19", "20", str(second.accepted), COMPLETED),
        (first.ingest_id, "0:0-9, 1:0-9", "20", str(first.accepted), COMPLETED),
    ]
    assert [row[6].split(" ")[0] for row in rows] == [str(second.rejected), str(first.rejected)]
    # No batch appears among the snapshots or anywhere the file's sections list ingests.
    file_sections = page[: page.index('<h2 id="streams">')]
    assert "str_" not in file_sections and STREAM_SCHEME + TOPIC in file_sections


def test_report_on_one_batch_describes_it_as_a_stream_batch(
    mixed_warehouse: MixedWarehouse, tmp_path: Path
) -> None:
    built = mixed_warehouse
    _, second = built.batches
    facts = gather(built.settings, second.ingest_id)
    assert facts.reconciled
    assert facts.ledger["source_file"] == f"kafka://{TOPIC}"
    out = tmp_path / "batch.html"
    settings = ["--warehouse", built.settings.warehouse, "--namespace", built.settings.namespace]
    assert main(["report", "--ingest-id", second.ingest_id, "--out", str(out), *settings]) == 0
    page = out.read_text(encoding="utf-8")
    assert f"stream batch of <code>kafka://{TOPIC}</code> (offsets 0:10-19, 1:10-19)" in page
    assert "<td>Kafka records</td><td>20</td>" in page


def test_a_batch_without_a_recorded_ingest_run_shows_the_ledgers_seconds_and_no_cost(
    mixed_warehouse: MixedWarehouse,
) -> None:
    """A stream batch's ingest records no `job_runs` row (the ledger row is the batch's
    record); its processing run does. The report falls back to the ledger's seconds, without
    workers, and calls the total a lower bound."""
    built = mixed_warehouse
    batch = built.batches[0]
    priced = built.settings.with_overrides({"worker_hour_usd": "local=3600"})
    facts = gather(priced, batch.ingest_id)
    ingest, process = facts.steps
    assert (ingest.step, ingest.run_id, ingest.workers) == ("ingest", "", None)
    assert ingest.seconds == pytest.approx(batch.duration_seconds)
    assert ingest.records == batch.lines_read
    assert (process.step, process.compute, process.workers) == ("process", "local", 1)
    assert not facts.cost_complete
    assert facts.cost_usd() == pytest.approx(process.seconds)  # 1 worker at $3600 an hour
