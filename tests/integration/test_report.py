"""The run report: facts match the ingest and processing runs, and the HTML parses whole."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from sluiceway.cli import main
from sluiceway.query import query
from sluiceway.report_facts import gather

pytestmark = pytest.mark.integration

VOID = {"meta", "br", "img", "rect", "input", "link", "hr"}


class _Structure(HTMLParser):
    """Checks that tags nest and close properly and that nothing is loaded from outside."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.svgs = 0
        self.external: list[str] = []
        self.ids: dict[str, str] = {}
        self._current_id = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.external.append(str(values[name]))
        self.svgs += tag == "svg"
        self._current_id = values.get("id") or ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._current_id:
            self.ids[self._current_id] = self.ids.get(self._current_id, "") + data


def test_report_facts_match_the_runs(analytics_warehouse) -> None:
    built = analytics_warehouse
    facts = gather(built.settings, built.ingest_id)
    assert facts.reconciled
    assert facts.transactions_rows == built.accepted
    assert facts.rejected_rows == built.rejected
    assert facts.processed + facts.failed == built.accepted
    reasons = query(
        built.settings,
        "SELECT COUNT(*) FROM rejected_records CROSS JOIN UNNEST(reasons) AS r(reason) "
        f"WHERE ingest_id = '{built.ingest_id}'",
    ).iloc[0, 0]
    assert sum(count for _, count in facts.rejects_by_reason) == reasons > 0
    ledger_snapshots = {s["snapshot_id"] for s in facts.snapshots if s["this_ingest"]}
    assert facts.ledger["transactions_snapshot_id"] in ledger_snapshots


def test_report_step_seconds_and_cost_are_the_recorded_runs(analytics_warehouse) -> None:
    """The ingest's and the processing run's own wall times (not first to last result), on
    the workers they ran with, priced by the table the settings give."""
    built = analytics_warehouse
    priced = built.settings.with_overrides({"worker_hour_usd": "local=0.5,glue=9"})
    facts = gather(priced, built.ingest_id)
    runs = query(
        built.settings,
        "SELECT step, compute, workers, records, duration_seconds FROM job_runs "
        f"WHERE ingest_id = '{built.ingest_id}' ORDER BY step",
    ).to_dict("records")
    assert [(r["step"], r["compute"], r["workers"]) for r in runs] == [
        ("ingest", "local", 1),
        ("process", "local", 1),
    ]
    assert [run.step for run in facts.steps] == ["ingest", "process"]
    ingest, process = facts.steps
    assert ingest.seconds == pytest.approx(built.ingest_seconds)
    assert ingest.seconds == pytest.approx(facts.ledger["duration_seconds"])
    assert ingest.records == facts.ledger["lines_read"]
    assert process.seconds == pytest.approx(built.process_seconds)
    assert process.records == built.process_records == built.accepted
    first_to_last = query(
        built.settings,
        "SELECT to_unixtime(MAX(processed_at)) - to_unixtime(MIN(processed_at)) "
        f"FROM processed_transactions WHERE ingest_id = '{built.ingest_id}'",
    ).iloc[0, 0]
    assert process.seconds > first_to_last
    expected = (built.ingest_seconds + built.process_seconds) * 1 * 0.5 / 3600
    assert facts.cost_complete
    assert facts.cost_usd() == pytest.approx(expected)
    assert gather(built.settings, built.ingest_id).cost_usd() == 0.0  # local runs are free


def test_report_html_is_self_contained_and_well_formed(analytics_warehouse, tmp_path) -> None:
    out = tmp_path / "report.html"
    code = main(
        [
            "report",
            "--ingest-id",
            analytics_warehouse.ingest_id,
            "--out",
            str(out),
            "--warehouse",
            analytics_warehouse.settings.warehouse,
            "--namespace",
            analytics_warehouse.settings.namespace,
        ]
    )
    assert code == 0
    parser = _Structure()
    parser.feed(out.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == []
    assert parser.external == []
    assert parser.svgs >= 3
    assert parser.ids["reconciliation"].strip() == "reconciled"
    assert parser.ids["cost"].startswith("$")
    assert "local $0;" in parser.ids["cost"]
    page = out.read_text(encoding="utf-8")
    timings = page[page.index('<table id="timings">') :].split("</table>")[0]
    process_seconds = f"<td>{analytics_warehouse.process_seconds:.1f}</td>"
    assert "<td>process</td>" in timings and process_seconds in timings


def test_report_on_an_empty_warehouse_says_what_to_do(isolated_settings, tmp_path, capsys) -> None:
    code = main(["report", "--out", str(tmp_path / "r.html"), "--warehouse", str(tmp_path)])
    assert code == 2
    assert "run `sluiceway ingest FILE` first" in capsys.readouterr().err


def test_query_pinned_to_an_ingest_reads_its_snapshot(analytics_warehouse) -> None:
    from sluiceway.errors import SluicewayError
    from sluiceway.query import ingest_snapshots
    from sluiceway.query_dialect import pin_athena_sql

    built = analytics_warehouse
    pins = ingest_snapshots(built.settings, built.ingest_id)
    assert set(pins) == {"transactions", "rejected_records"}
    pinned = query(built.settings, "SELECT COUNT(*) FROM transactions", built.ingest_id)
    assert pinned.iloc[0, 0] == built.accepted
    with pytest.raises(SluicewayError, match="no completed ingest 'ing_missing'"):
        query(built.settings, "SELECT 1", "ing_missing")
    athena = pin_athena_sql("SELECT COUNT(*) FROM transactions", {"transactions": 42}, "db")
    assert athena == (
        'WITH transactions AS (SELECT * FROM "db".transactions FOR VERSION AS OF 42) '
        "SELECT COUNT(*) FROM transactions"
    )
