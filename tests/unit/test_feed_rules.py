"""A second feed's file drives the tokenizer, the rules, the severities and the table rows
with no code of its own (tests/fixtures/feeds/payouts.toml); no Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sluiceway.feeds import load_feed
from sluiceway.ingest.file_policy import feed_policy
from sluiceway.ingest.header import contract_layout
from sluiceway.ingest.parse import tokenize
from sluiceway.ingest.table_rows import Lineage, to_rejected, to_transactions
from sluiceway.ingest.validate import validate
from sluiceway.settings import load_settings
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS, arrow_schema

pytestmark = pytest.mark.unit

FIXTURE_FEEDS = str(Path(__file__).resolve().parents[1] / "fixtures" / "feeds")
PAYOUTS = load_feed("payouts", FIXTURE_FEEDS)
LINEAGE = Lineage("payouts.csv", "ingest-p", datetime(2026, 11, 26, tzinfo=UTC), PAYOUTS)
LINES = [
    "P1,Shop A,100.12,EUR,2026-11-25T10:00:00Z,3,sepa",  # accepted
    "P2,Shop B,5.00,EUR,2026-11-25T11:00:00+01:00,,card",  # accepted, items blank
    "P3,Shop C,7.5,USD,2026-11-25T12:00:00Z,4000,swift",  # accepted with a warning
    "P4,Shop D,-1.00,EUR,2026-11-25T12:00:00Z,1,sepa",  # negative_payout
    "P5,Shop E,1.001,EUR,2026-11-25T12:00:00Z,1x,cash",  # three rules broken
    "P6,Shop F,1.00,EUR,2026-11-25,1,sepa",  # bad_paid_at
]


def payouts() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    data = ("\n".join(LINES) + "\n").encode()
    validated = validate(tokenize(data, 2, layout=contract_layout(PAYOUTS.columns)), PAYOUTS)
    accepted = to_transactions(validated, LINEAGE)
    rejected = to_rejected(validated, LINEAGE)
    assert accepted.schema == arrow_schema(TRANSACTIONS, PAYOUTS)
    assert rejected.schema == arrow_schema(REJECTED_RECORDS, PAYOUTS)
    return accepted.to_pylist(), rejected.to_pylist()


def test_the_second_feed_types_its_own_columns() -> None:
    accepted, _ = payouts()
    assert [row["payout_id"] for row in accepted] == ["P1", "P2", "P3"]
    first, second, _ = accepted
    assert first["net_amount"] == Decimal("100.12")
    assert first["items"] == 3
    assert first["paid_at"] == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert second["items"] is None
    assert second["paid_at"] == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert "transaction_id" not in first and "amount" not in first


def test_a_warn_rule_accepts_the_record_and_names_its_code_in_warnings() -> None:
    accepted, rejected = payouts()
    assert [row["warnings"] for row in accepted] == [[], [], ["many_items"]]
    assert all("many_items" not in row["reasons"] for row in rejected)


def test_reject_and_fail_file_rules_reject_with_their_codes_in_file_order() -> None:
    _, rejected = payouts()
    by_id = {row["payout_id"]: row for row in rejected}
    assert by_id["P4"]["reasons"] == ["negative_payout"]
    assert by_id["P4"]["reason_detail"] == (
        "line 5: negative_payout: net_amount '-1.00' is below 0"
    )
    assert by_id["P5"]["reasons"] == ["bad_net_amount", "bad_items", "unknown_method"]
    assert by_id["P5"]["reason_detail"] == (
        "line 6: bad_net_amount: net_amount '1.001' is not a plain decimal with at most 2 "
        "places; bad_items: items '1x' is not a whole number; "
        "unknown_method: method 'cash' is not sepa, swift, card"
    )
    assert by_id["P6"]["reasons"] == ["bad_paid_at"]
    assert "unknown_method" in PAYOUTS.fail_file_reasons


def test_every_rejected_row_carries_the_feed_files_rule_version() -> None:
    _, rejected = payouts()
    assert {row["rule_version"] for row in rejected} == {PAYOUTS.rule_version}
    assert PAYOUTS.rule_version.startswith("payouts@3:")


def test_a_wrong_field_count_counts_the_feeds_own_columns() -> None:
    records = tokenize(b"P9,Shop,1.000\n", 2, layout=contract_layout(PAYOUTS.columns))
    validated = validate(records, PAYOUTS)
    (row,) = to_rejected(validated, LINEAGE).to_pylist()
    assert row["reasons"] == ["wrong_field_count"]
    assert row["reason_detail"] == "line 2: wrong_field_count: 3 fields, expected 7"
    # With 3 fields of 7 the sensitive merchant (column 2) may sit in the first field: masked.
    assert row["payout_id"] == "**"


def test_feed_selects_its_namespace_and_transactions_keeps_the_configured_one() -> None:
    chosen = load_settings(arguments={"feed": "payouts", "feeds_dir": FIXTURE_FEEDS})
    assert chosen.namespace == "payouts"
    assert chosen.table("transactions") == "lake.payouts.transactions"
    assert chosen.feed_contract() == PAYOUTS
    aws = load_settings(profile="local-aws")
    assert aws.feed == "transactions" and aws.namespace != "payouts"
    assert load_settings(environ={"SLUICEWAY_FEEDS_DIR": FIXTURE_FEEDS}).feeds_dir == FIXTURE_FEEDS


def test_a_feed_s_file_policy_comes_from_its_file() -> None:
    """`max_rejected_share` and the `fail_file` rules of the feed file judge the whole file."""
    transactions = feed_policy(load_feed("transactions"))
    assert (transactions.max_rejected_share, transactions.fail_file_reasons) == (0.05, frozenset())
    payouts = feed_policy(PAYOUTS)
    assert payouts.fail_file_reasons == PAYOUTS.fail_file_reasons != frozenset()
    assert payouts.max_rejected_share == (PAYOUTS.max_rejected_share or 1.0)
