"""Reconciliation by physical lines and against the partner's manifest, without Spark."""

from decimal import Decimal

import pytest

from sluiceway.ingest.audit import completed_message
from sluiceway.ingest.reconcile import Counts, Manifest, balance_problems, manifest_problems
from sluiceway.logs import mask_text

pytestmark = pytest.mark.unit


def test_a_swallowed_line_fails_the_balance_even_when_records_add_up():
    counts = Counts(lines_read=10, accepted=8, rejected=1, records_read=9, accepted_lines=8,
                    rejected_lines=1)  # fmt: skip
    (problem,) = balance_problems(counts)
    assert problem.startswith("lines after the header 10 != lines covered")


def test_records_that_iceberg_holds_must_equal_what_the_tasks_wrote():
    counts = Counts(lines_read=3, accepted=2, rejected=1, records_read=4, accepted_lines=2,
                    rejected_lines=1)  # fmt: skip
    assert balance_problems(counts) == [
        "records read 4 != accepted 2 + rejected 1 found in the tables"
    ]


def test_a_currency_listed_with_zero_agrees_with_none_accepted():
    manifest = Manifest("m.json", 1, 1, 0, accepted_amount_by_currency={
        "EUR": Decimal("1.00"), "JPY": Decimal("0.00")})  # fmt: skip
    found = Counts(1, 1, 0, accepted_amount_by_currency={"EUR": Decimal("1.00")})
    assert manifest_problems(found, manifest) == []
    wrong = Counts(1, 1, 0, accepted_amount_by_currency={"EUR": Decimal("2.00")})
    assert manifest_problems(wrong, manifest) == [
        "accepted amount by currency: manifest {'EUR': Decimal('1.00')}, "
        "ingest {'EUR': Decimal('2.00')}"
    ]


def test_manifest_lines_are_checked_when_given():
    manifest = Manifest("m.json", records=2, accepted=2, rejected=0, lines=3)
    assert manifest_problems(Counts(2, 2, 0), manifest) == ["lines: manifest 3, ingest 2"]


def test_a_day_of_30_million_lines_is_logged_with_its_counts_not_masked_as_an_account():
    message = completed_message(Counts(30_120_131, 30_000_000, 0), manifest_matched=True)
    assert mask_text(message) == message
    assert message == (
        "ingested 30,120,131 lines: 30,000,000 records accepted, 0 rejected (manifest matched)"
    )


def test_a_failed_balance_of_a_big_day_keeps_its_counts_readable_in_the_log():
    counts = Counts(30_120_131, 29_999_999, 0, records_read=30_000_000,
                    accepted_lines=30_120_130, rejected_lines=0)  # fmt: skip
    problems = balance_problems(counts)
    assert [mask_text(problem) for problem in problems] == problems
    assert problems[0].startswith("lines after the header 30,120,131 != lines covered")
