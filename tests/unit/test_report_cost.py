"""The report's cost: each run's seconds x workers x its compute's price per worker-hour, with
prices from a table in the settings that the configuration overrides price by price."""

from __future__ import annotations

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.report import render
from sluiceway.report_facts import RunFacts, StepRun, run_cost_usd
from sluiceway.settings import WORKER_HOUR_USD, load_settings

pytestmark = pytest.mark.unit


def _facts(steps: list[StepRun], prices: dict[str, float]) -> RunFacts:
    ledger = {
        "ingest_id": "ing_1",
        "source_file": "/landing/partner_2026-01-05.csv",
        "source_version": None,
        "lines_read": 3_600,
        "accepted": 3_000,
        "rejected": 600,
        "accepted_lines": 3_000,
        "rejected_lines": 600,
        "finished_at": "2026-01-05 10:00:00+00:00",
        "duration_seconds": 90.0,
    }
    return RunFacts("ing_1", ledger, 3_000, 600, 3_000, 600, [], [], [], [], steps, [], prices)


def test_a_run_costs_its_seconds_times_its_workers_times_the_hourly_price() -> None:
    assert run_cost_usd(3600, 10, 0.44) == pytest.approx(4.40)
    assert run_cost_usd(90, 10, 0.44) == pytest.approx(0.11)
    glue = StepRun("ingest", "r1", "glue", 10, 3_600, 90.0)
    assert glue.cost_usd({"glue": 0.44}) == pytest.approx(0.11)
    assert glue.records_per_second == 40.0


def test_a_run_without_workers_or_without_a_price_has_no_cost() -> None:
    unrecorded = StepRun("ingest", "", None, None, 3_600, 90.0)
    unpriced = StepRun("process", "r2", "elsewhere", 4, 3_000, 60.0)
    assert unrecorded.cost_usd(WORKER_HOUR_USD) is None
    assert unpriced.cost_usd(WORKER_HOUR_USD) is None


def test_the_total_is_a_lower_bound_when_a_run_was_not_recorded() -> None:
    steps = [
        StepRun("ingest", "", None, None, 3_600, 90.0),
        StepRun("process", "r2", "glue", 10, 3_000, 180.0, other_ingests=2),
    ]
    facts = _facts(steps, {"glue": 0.44})
    assert facts.cost_usd() == pytest.approx(180 * 10 * 0.44 / 3600)
    assert not facts.cost_complete
    page = render(facts)
    assert "$0.2200 in all (at least the runs above)" in page
    assert "<td>process (shared with 2 other ingests)</td>" in page
    assert "<td>not recorded</td>" in page
    assert "glue $0.44;" in page


def test_the_price_table_has_a_price_for_every_profile_and_is_overridden_price_by_price() -> None:
    settings = load_settings("glue")
    prices = settings.worker_hour_prices()
    assert set(prices) == {"local", "glue", "emr-serverless", "batch", "local-aws"}
    assert prices["glue"] == 0.44
    # 4 vCPU and 16 GB: EMR Serverless and Fargate per vCPU-hour and per GB-hour.
    assert prices["emr-serverless"] == pytest.approx(4 * 0.052624 + 16 * 0.0057785)
    assert prices["batch"] == pytest.approx(4 * 0.04048 + 16 * 0.004445)
    overridden = load_settings(environ={"SLUICEWAY_WORKER_HOUR_USD": "glue=0.88"})
    assert overridden.worker_hour_prices() == {**prices, "glue": 0.88}
    argued = load_settings(
        environ={"SLUICEWAY_WORKER_HOUR_USD": "glue=0.88"},
        arguments={"worker_hour_usd": "local=0.1"},
    )
    assert argued.worker_hour_prices() == {**prices, "local": 0.1}


def test_a_price_that_is_not_a_number_is_refused_with_an_example() -> None:
    settings = load_settings(environ={"SLUICEWAY_WORKER_HOUR_USD": "glue=cheap"})
    with pytest.raises(ConfigurationError, match=r"price of 'glue' must be a number.*glue=0.44"):
        settings.worker_hour_prices()
