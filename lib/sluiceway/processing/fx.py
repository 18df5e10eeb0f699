"""Reference FX rates: shipped as a CSV, loaded into the Iceberg table `fx_rates`, looked up
as of a transaction's date (the latest rate published on or before that day).

The shipped file holds monthly reference rates against EUR for the currencies the partner
sends; they are illustrative values, not market data — production loads the treasury's
table into `fx_rates` instead, and the lookup does not change.
"""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.errors import ConfigurationError
from sluiceway.tables import FX_RATES, current_snapshot_id, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sluiceway.settings import Settings

RATE_TYPE = pa.decimal128(18, 10)
EPOCH = date(1970, 1, 1)
PACKAGED_SOURCE = "sluiceway/data/fx_rates.csv"


@dataclass(frozen=True)
class FxRate:
    """One published rate: 1 unit of `currency` is worth `rate` units of `base_currency`."""

    rate_date: date
    currency: str
    base_currency: str
    rate: Decimal


def packaged_rates() -> list[FxRate]:
    """The rates shipped in sluiceway/data/fx_rates.csv."""
    text = resources.files("sluiceway").joinpath("data/fx_rates.csv").read_text("utf-8")
    return [
        FxRate(
            date.fromisoformat(row["rate_date"]),
            row["currency"],
            row["base_currency"],
            Decimal(row["rate"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    ]


def load_fx_rates(spark: SparkSession, settings: Settings) -> None:
    """Fill an empty `fx_rates` table with the shipped rates; a table with rates is left alone.

    Production owns its rates (the treasury's feed writes the table); the shipped file only
    makes a fresh warehouse work, so it is never merged over rates that are already there.
    """
    from pyspark.sql.types import DateType, DecimalType, StringType, StructField, StructType

    ensure_tables(spark, settings, (FX_RATES,))
    if current_snapshot_id(spark, settings, FX_RATES) is not None:
        return
    schema = StructType(
        [
            StructField("rate_date", DateType()),
            StructField("currency", StringType()),
            StructField("base_currency", StringType()),
            StructField("rate", DecimalType(18, 10)),
            StructField("source", StringType()),
        ]
    )
    rows = [
        (r.rate_date, r.currency, r.base_currency, r.rate, PACKAGED_SOURCE)
        for r in packaged_rates()
    ]
    spark.createDataFrame(rows, schema).writeTo(settings.table(FX_RATES)).append()


def read_fx_rates(spark: SparkSession, settings: Settings, base_currency: str) -> FxRates:
    """Every rate of `fx_rates` into the given base currency (a few thousand rows)."""
    rows = spark.sql(
        f"SELECT rate_date, currency, rate FROM {settings.table(FX_RATES)} "
        f"WHERE base_currency = '{base_currency}'"
    ).collect()
    if not rows:
        raise ConfigurationError(
            f"{settings.table(FX_RATES)} has no rates into {base_currency}; "
            "load them with sluiceway.processing.fx.load_fx_rates or choose another base"
        )
    return FxRates(
        tuple(FxRate(r.rate_date, r.currency, base_currency, r.rate) for r in rows),
        base_currency,
    )


@dataclass(frozen=True)
class FxRates:
    """As-of lookup, per record (Decimal) or vectorized (Arrow), with identical answers."""

    rates: tuple[FxRate, ...]
    base_currency: str
    _by_currency: dict[str, tuple[list[date], list[Decimal]]] = field(
        init=False, repr=False, compare=False
    )
    first_day: date = field(init=False, compare=False)
    last_day: date = field(init=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[FxRate]] = {}
        for rate in sorted(self.rates, key=lambda r: (r.currency, r.rate_date)):
            grouped.setdefault(rate.currency, []).append(rate)
        by_currency = {
            currency: ([r.rate_date for r in items], [r.rate for r in items])
            for currency, items in grouped.items()
        }
        object.__setattr__(self, "_by_currency", by_currency)
        object.__setattr__(self, "first_day", min(r.rate_date for r in self.rates))
        object.__setattr__(self, "last_day", max(r.rate_date for r in self.rates))

    def rate_on(self, currency: str, day: date) -> Decimal | None:
        """The latest rate of `currency` published on or before `day`, or None."""
        if currency == self.base_currency:
            return Decimal("1.0000000000")
        known = self._by_currency.get(currency)
        if known is None:
            return None
        position = bisect.bisect_right(known[0], day) - 1
        return known[1][position] if position >= 0 else None

    def daily(self) -> tuple[list[str], int, pa.Array]:
        """A dense currency x day table from first_day to last_day, forward-filled.

        Returns the currencies, the number of days, and the flattened rates (null where a
        currency had no rate yet); index = currency_position * days + day_offset.
        """
        currencies = sorted({*self._by_currency, self.base_currency})
        days = (self.last_day - self.first_day).days + 1
        values: list[Decimal | None] = []
        for currency in currencies:
            values.extend(
                self.rate_on(currency, self.first_day + timedelta(days=offset))
                for offset in range(days)
            )
        return currencies, days, pa.array(values, RATE_TYPE)

    def spark_frame(self, spark: SparkSession) -> DataFrame:
        """The dense daily table built in Spark: (currency, rate_day, rate), forward-filled."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        rows = [
            (r.currency, r.rate_date, r.rate)
            for r in self.rates
            if r.currency != self.base_currency
        ]
        rows.append((self.base_currency, self.first_day, Decimal("1.0000000000")))
        published = spark.createDataFrame(
            rows, "currency string, rate_day date, rate decimal(18,10)"
        )
        following = F.lead("rate_day").over(Window.partitionBy("currency").orderBy("rate_day"))
        until = F.coalesce(F.date_sub(following, 1), F.lit(self.last_day))
        return published.withColumn("until", until).select(
            "currency", F.explode(F.sequence("rate_day", "until")).alias("rate_day"), "rate"
        )


class DailyRateIndex:
    """The vectorized lookup, built once per partition from `FxRates.daily()`."""

    def __init__(self, rates: FxRates) -> None:
        currencies, self.days, self.flat = rates.daily()
        self.currencies = pa.array(currencies, pa.string())
        self.first_day = (rates.first_day - EPOCH).days

    def lookup(self, currency: pa.Array, event_time: pa.Array) -> pa.Array:
        """Rate per record as of its UTC date; null for unknown currencies or earlier dates."""
        position = pc.index_in(currency, value_set=self.currencies).to_numpy(zero_copy_only=False)
        day = pc.cast(pc.cast(event_time, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        offset = day - self.first_day
        known = ~np.isnan(position) & (offset >= 0) if position.dtype.kind == "f" else offset >= 0
        flat_index = np.where(
            known,
            np.nan_to_num(position).astype(np.int64) * self.days
            + np.minimum(np.maximum(offset, 0), self.days - 1),
            0,
        )
        taken = self.flat.take(pa.array(flat_index, pa.int64()))
        return pc.if_else(pa.array(known, pa.bool_()), taken, pa.scalar(None, RATE_TYPE))
