"""The financial rules: the vectorized handler agrees with the plain reference, record by record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from sluiceway.processing.financial import (
    CROSS_BORDER,
    FX_RATE_MISSING,
    HIGH_RISK_MCC,
    LARGE_AMOUNT,
    VELOCITY,
    FinancialHandler,
    FinancialRules,
    assess_record,
)
from sluiceway.processing.fx import DailyRateIndex, FxRate, FxRates, packaged_rates

pytestmark = pytest.mark.unit

RATES = FxRates(
    (
        FxRate(date(2026, 10, 1), "USD", "EUR", Decimal("0.9000000000")),
        FxRate(date(2026, 11, 1), "USD", "EUR", Decimal("0.8500000000")),
        FxRate(date(2026, 11, 1), "JPY", "EUR", Decimal("0.0061234567")),
    ),
    "EUR",
)
INPUT_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("account_id", pa.string()),
        ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("mcc", pa.string()),
        ("country", pa.string()),
        ("account_recent_count", pa.int64()),
    ]
)


def record(i: str, amount: str, currency: str, day: str, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": i,
        "account_id": extra.get("account_id", "DE89370400440532013000"),
        "amount": Decimal(amount),
        "currency": currency,
        "event_time": datetime.fromisoformat(day).replace(tzinfo=UTC),
        "channel": extra.get("channel", "ecommerce"),
        "mcc": extra.get("mcc", "5411"),
        "country": extra.get("country", "DE"),
        "account_recent_count": extra.get("account_recent_count", 1),
    }


RECORDS = [
    record("T1", "100.00", "EUR", "2026-11-25T10:00:00"),
    record("T2", "100.00", "USD", "2026-10-31T23:59:59"),  # October rate, last day
    record("T3", "100.00", "USD", "2026-11-01T00:00:00"),  # November rate from midnight UTC
    record("T4", "-12345.67", "USD", "2027-02-01T00:00:00", channel="atm"),  # latest rate
    record("T5", "1000000.00", "JPY", "2026-11-25T00:00:00", country="FR", mcc="7995"),
    record("T6", "5.00", "USD", "2026-09-30T00:00:00"),  # before the first USD rate
    record("T7", "5.00", "CHF", "2026-11-25T00:00:00"),  # no CHF rate at all
    record("T8", "0.01", "EUR", "2026-11-25T00:00:00", account_recent_count=6, channel="mobile"),
    record("T9", "33.33", "EUR", "2026-11-25T00:00:00", account_id="M123", country="US"),
]


def vectorized(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    handler = FinancialHandler(FinancialRules(), RATES)
    handler.setup()
    batch = pa.RecordBatch.from_pylist(records, schema=INPUT_SCHEMA)
    return handler.handle_arrow(batch).to_pylist()


def test_amount_is_converted_with_the_rate_of_the_transaction_day() -> None:
    out = {r["transaction_id"]: r for r in vectorized(RECORDS)}
    assert out["T1"]["amount_base"] == Decimal("100.00")
    assert out["T2"]["amount_base"] == Decimal("90.00")
    assert out["T3"]["amount_base"] == Decimal("85.00")
    assert out["T4"]["amount_base"] == Decimal("-10493.82")  # -10493.8195 rounds away from 0
    assert out["T5"]["amount_base"] == Decimal("6123.46")


def test_fee_depends_on_the_channel_and_the_absolute_amount() -> None:
    out = {r["transaction_id"]: r for r in vectorized(RECORDS)}
    assert out["T1"]["fee_base"] == Decimal("1.65")  # 1.4% of 100 + 0.25
    assert out["T4"]["fee_base"] == Decimal("2.00")  # atm: fixed only
    assert out["T8"]["fee_base"] == Decimal("0.10")  # mobile: 0.9% of 0.01 + 0.10


def test_risk_flags_are_set_by_amount_country_mcc_and_account_velocity() -> None:
    out = {r["transaction_id"]: r for r in vectorized(RECORDS)}
    assert out["T1"]["risk_flags"] == [] and out["T1"]["result"] == "clear"
    assert out["T4"]["risk_flags"] == [LARGE_AMOUNT]
    assert out["T5"]["risk_flags"] == [CROSS_BORDER, HIGH_RISK_MCC]
    assert out["T8"]["risk_flags"] == [VELOCITY] and out["T8"]["result"] == "review"
    assert out["T9"]["risk_flags"] == []  # not an IBAN: no home country to compare


def test_missing_rate_fails_only_that_record_with_an_actionable_message() -> None:
    out = {r["transaction_id"]: r for r in vectorized(RECORDS)}
    assert out["T6"]["error_class"] == FX_RATE_MISSING
    assert "no EUR rate for USD on or before 2026-09-30" in out["T6"]["error_message"]
    assert out["T7"]["error_class"] == FX_RATE_MISSING
    assert out["T1"]["error_class"] is None


def test_vectorized_handler_matches_the_record_by_record_reference() -> None:
    expected = [assess_record(r, RATES, FinancialRules()) for r in RECORDS]
    actual = vectorized(RECORDS)
    for want, got in zip(expected, actual, strict=True):
        for key, value in want.items():
            assert got[key] == value, (want["transaction_id"], key)


def test_shipped_rates_cover_the_generated_currencies_every_month() -> None:
    rates = FxRates(tuple(packaged_rates()), "EUR")
    for currency in ("EUR", "USD", "GBP", "CHF", "SEK", "PLN", "JPY", "DKK"):
        assert rates.rate_on(currency, date(2026, 11, 25)) is not None
    index = DailyRateIndex(rates)
    looked_up = index.lookup(
        pa.array(["USD", "XXX"]),
        pa.array([datetime(2026, 11, 25, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
    ).to_pylist()
    assert looked_up == [rates.rate_on("USD", date(2026, 11, 25)), None]
