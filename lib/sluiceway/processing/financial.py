"""The default handler: amount in the base currency, fee by channel, risk flags.

The same rules exist three times on purpose, and tests hold them equal:
`FinancialHandler` (vectorized, what the engine runs), `assess_record` (one record at a time,
the readable reference and the benchmark's naive variant) and `assess_with_spark` (native
Spark expressions, the benchmark's ceiling). Money is Decimal everywhere, rounded half away
from zero to cents, as Spark's ROUND does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.processing.fx import DailyRateIndex, FxRates, load_fx_rates, read_fx_rates
from sluiceway.processing.handlers import ArrowHandler
from sluiceway.processing.partition import ENGINE_INPUT_COLUMNS
from sluiceway.statuses import COMPLETED
from sluiceway.tables import INGEST_LEDGER, TRANSACTIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sluiceway.settings import Settings

CENT = Decimal("0.01")
MONEY = pa.decimal128(18, 2)

LARGE_AMOUNT = "large_amount"
CROSS_BORDER = "cross_border"
HIGH_RISK_MCC = "high_risk_mcc"
VELOCITY = "account_velocity"
FLAGS = (LARGE_AMOUNT, CROSS_BORDER, HIGH_RISK_MCC, VELOCITY)
FLAG_NAMES = pa.array(FLAGS, pa.string())

CLEAR = "clear"
REVIEW = "review"
FX_RATE_MISSING = "FxRateMissing"
UNKNOWN_FEE_CHANNEL = "UnknownFeeChannel"

# Transactions of the same account within this window before a record, the record included.
RECENT_COUNT = "account_recent_count"
# An account id that starts with two capital letters is an IBAN: they are its country.
IBAN_COUNTRY = re.compile(r"^[A-Z]{2}")


@dataclass(frozen=True)
class Fee:
    """Fee of one channel: a share of the absolute base amount plus a fixed part, both in base."""

    percent: Decimal
    fixed: Decimal


@dataclass(frozen=True)
class FinancialRules:
    """The business parameters; change them here, every variant follows."""

    base_currency: str = "EUR"
    large_amount: Decimal = Decimal("10000.00")
    high_risk_mcc: frozenset[str] = frozenset({"4829", "5967", "6051", "6211", "7273", "7995"})
    velocity_limit: int = 5
    velocity_window_seconds: int = 3600
    fees: Mapping[str, Fee] = field(
        default_factory=lambda: {
            "card_present": Fee(Decimal("0.0020"), Decimal("0.05")),
            "ecommerce": Fee(Decimal("0.0140"), Decimal("0.25")),
            "mobile": Fee(Decimal("0.0090"), Decimal("0.10")),
            "transfer": Fee(Decimal("0.0000"), Decimal("0.20")),
            "direct_debit": Fee(Decimal("0.0000"), Decimal("0.35")),
            "atm": Fee(Decimal("0.0000"), Decimal("2.00")),
        }
    )


def _missing_rate_message(currency: str, day: object, base: str) -> str:
    return (
        f"no {base} rate for {currency} on or before {day} in fx_rates; add the rate to "
        "fx_rates (or lib/sluiceway/data/fx_rates.csv) and re-run the processing"
    )


def assess_record(
    record: Mapping[str, Any], rates: FxRates, rules: FinancialRules
) -> dict[str, Any]:
    """One record's result, written plainly: the reference the vectorized path must match."""
    transaction_id = record["transaction_id"]
    day = record["event_time"].date()
    rate = rates.rate_on(record["currency"], day)
    if rate is None:
        return {
            "transaction_id": transaction_id,
            "error_class": FX_RATE_MISSING,
            "error_message": _missing_rate_message(record["currency"], day, rules.base_currency),
        }
    fee = rules.fees.get(record["channel"])
    if fee is None:
        return {
            "transaction_id": transaction_id,
            "error_class": UNKNOWN_FEE_CHANNEL,
            "error_message": f"channel {record['channel']!r} has no fee in FinancialRules.fees",
        }
    amount_base = (record["amount"] * rate).quantize(CENT, ROUND_HALF_UP)
    fee_base = (abs(amount_base) * fee.percent + fee.fixed).quantize(CENT, ROUND_HALF_UP)
    account = record["account_id"] or ""
    flags = []
    if abs(amount_base) >= rules.large_amount:
        flags.append(LARGE_AMOUNT)
    if IBAN_COUNTRY.match(account) and account[:2] != record["country"]:
        flags.append(CROSS_BORDER)
    if record.get("mcc") in rules.high_risk_mcc:
        flags.append(HIGH_RISK_MCC)
    if (record.get(RECENT_COUNT) or 0) > rules.velocity_limit:
        flags.append(VELOCITY)
    return {
        "transaction_id": transaction_id,
        "result": REVIEW if flags else CLEAR,
        "base_currency": rules.base_currency,
        "amount_base": amount_base,
        "fee_base": fee_base,
        "risk_flags": flags,
    }


class FinancialHandler(ArrowHandler):
    """Vectorized with pyarrow compute: no Python work per record except for failed ones."""

    name = "financial"
    columns = ("account_id", "amount", "currency", "channel", "mcc", "country", RECENT_COUNT)

    def __init__(self, rules: FinancialRules | None = None, rates: FxRates | None = None) -> None:
        self.rules = rules or FinancialRules()
        self.rates = rates
        self._index: DailyRateIndex | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> FinancialHandler:
        rules = FinancialRules()
        overrides: dict[str, Any] = {}
        if "base_currency" in options:
            overrides["base_currency"] = options["base_currency"]
        if "large_amount" in options:
            overrides["large_amount"] = Decimal(options["large_amount"])
        if "velocity_limit" in options:
            overrides["velocity_limit"] = int(options["velocity_limit"])
        return cls(FinancialRules(**{**rules.__dict__, **overrides}))

    def bind(self, records: DataFrame, settings: Settings) -> DataFrame:
        """Load the FX rates into this handler and count each account's recent transactions."""
        self._load_rates(records.sparkSession, settings)
        return with_recent_counts(records, settings, self.rules)

    def bind_laid_out(
        self, records: DataFrame, settings: Settings, partitions: int, whole_ingests: bool = False
    ) -> DataFrame:
        """`bind` in the engine's layout: the velocity window's shuffle by account is the
        only shuffle; the tasks read the records grouped by account, in time order."""
        self._load_rates(records.sparkSession, settings)
        wanted = [name for name in (*ENGINE_INPUT_COLUMNS, *self.columns) if name != RECENT_COUNT]
        return with_recent_counts(
            records.select(*dict.fromkeys(wanted)), settings, self.rules, partitions,
            whole_ingests,
        )  # fmt: skip

    def _load_rates(self, spark: SparkSession, settings: Settings) -> None:
        load_fx_rates(spark, settings)
        self.rates = read_fx_rates(spark, settings, self.rules.base_currency)
        # Built once here and shipped with the handler: per task it would cost ~0.1 s each.
        self._index = DailyRateIndex(self.rates)

    def setup(self) -> None:
        if self.rates is None:
            raise RuntimeError("FinancialHandler has no FX rates: the engine calls bind() first")
        if self._index is None:
            self._index = DailyRateIndex(self.rates)

    def handle_arrow(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._index is None:
            self.setup()
        assert self._index is not None, "setup() builds the rate index"
        rules = self.rules
        rate = self._index.lookup(batch.column("currency"), batch.column("event_time"))
        amount = batch.column("amount").cast(MONEY)
        amount_base = _cents(pc.multiply(amount, rate))
        channels = pa.array(list(rules.fees), pa.string())
        channel_position = pc.index_in(batch.column("channel"), value_set=channels)
        percent = pa.array([f.percent for f in rules.fees.values()], pa.decimal128(9, 4))
        fixed = pa.array([f.fixed for f in rules.fees.values()], pa.decimal128(9, 4))
        fee_base = _cents(
            pc.add(
                pc.multiply(pc.abs(amount_base), percent.take(channel_position)),
                fixed.take(channel_position),
            )
        )
        flags = self._flags(batch, amount_base)
        failed_rate = pc.is_null(rate)
        failed_fee = pc.and_(pc.invert(failed_rate), pc.is_null(channel_position))
        error_class = pc.if_else(
            failed_rate,
            FX_RATE_MISSING,
            pc.if_else(failed_fee, UNKNOWN_FEE_CHANNEL, pa.scalar(None, pa.string())),
        )
        return pa.RecordBatch.from_pydict(
            {
                "transaction_id": batch.column("transaction_id"),
                "result": pc.if_else(pc.greater(pc.list_value_length(flags), 0), REVIEW, CLEAR),
                "base_currency": pa.repeat(pa.scalar(rules.base_currency), batch.num_rows),
                "amount_base": amount_base,
                "fee_base": fee_base,
                "risk_flags": flags,
                "error_class": error_class,
                "error_message": self._error_messages(batch, error_class),
            }
        )

    def _flags(self, batch: pa.RecordBatch, amount_base: pa.Array) -> pa.Array:
        rules = self.rules
        account = batch.column("account_id")
        large = pc.greater_equal(pc.abs(amount_base), pa.scalar(rules.large_amount, MONEY))
        cross = pc.and_(
            pc.match_substring_regex(account, IBAN_COUNTRY.pattern),
            pc.not_equal(pc.utf8_slice_codeunits(account, 0, 2), batch.column("country")),
        )
        risky = pc.is_in(batch.column("mcc"), value_set=pa.array(sorted(rules.high_risk_mcc)))
        if RECENT_COUNT in batch.schema.names:
            busy = pc.greater(batch.column(RECENT_COUNT), rules.velocity_limit)
        else:
            busy = pa.array([False] * batch.num_rows)
        matrix = np.column_stack([_filled(large), _filled(cross), _filled(risky), _filled(busy)])
        # np.nonzero walks the matrix row by row, so the flag names come out in row order.
        _, columns = np.nonzero(matrix)
        offsets = np.concatenate([[0], np.cumsum(matrix.sum(axis=1))]).astype(np.int32)
        values = FLAG_NAMES.take(pa.array(columns, pa.int64()))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)

    def _error_messages(self, batch: pa.RecordBatch, error_class: pa.Array) -> pa.Array:
        failed = np.flatnonzero(pc.is_valid(error_class).to_numpy(zero_copy_only=False))
        messages: list[str | None] = [None] * batch.num_rows
        for index in failed.tolist():
            record = batch.slice(index, 1).to_pylist()[0]
            if error_class[index].as_py() == FX_RATE_MISSING:
                messages[index] = _missing_rate_message(
                    record["currency"], record["event_time"].date(), self.rules.base_currency
                )
            else:
                messages[index] = f"channel {record['channel']!r} has no fee in FinancialRules.fees"
        return pa.array(messages, pa.string())


def _cents(value: pa.Array) -> pa.Array:
    return pc.round(value, ndigits=2, round_mode="half_towards_infinity").cast(MONEY)


def _filled(mask: pa.Array) -> NDArray[np.bool_]:
    filled: NDArray[np.bool_] = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return filled.astype(bool)


# The velocity window's own columns: a record travels whole in RECORD (null for a transaction
# it is counted against), beside the keys the window groups and orders by. The account's hash
# comes first in the sort so that Spark's 8-byte sort prefix tells rows apart (account ids of
# one bank share their first 8 characters; sorting by them compared whole rows).
_RECORD = "_velocity_record"
_ACCOUNT_HASH = "_velocity_account_hash"
_EVENT_SECOND = "_velocity_event_second"


def with_recent_counts(
    records: DataFrame,
    settings: Settings,
    rules: FinancialRules,
    partitions: int | None = None,
    whole_ingests: bool = False,
) -> DataFrame:
    """Add `account_recent_count`: the account's transactions in the window before each record.

    Counted over every completed ingest's transactions of the records' time span (not just
    this run's records), so a resumed run computes the same flag as an uninterrupted one.
    Only completed ingests, like every reader of an ingest (docs/adr/0007-write-audit-publish.md):
    rows on `main` whose ingest is still `publishing` are not decided for processing yet.

    One windowed pass: the records and the transactions they are counted against go through
    one window by account, which counts only the latter, so each record gets exactly its own
    count, with no join back on a key (a join on the transaction id alone once gave a record
    that recurs in another ingest two rows). `whole_ingests`: the records are every
    transaction of their (completed) ingests, as on an ingest's first run; then they count
    themselves and only other ingests' transactions are read beside them. With `partitions`,
    the window's shuffle is also the engine's layout: the records come out hash-partitioned by
    account into `partitions` partitions, sorted by account, event time, transaction id and
    ingest id, a total order (see Handler.bind_laid_out).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bounds = records.agg(
        F.min("event_time").alias("low"),
        F.max("event_time").alias("high"),
        F.collect_set("ingest_id").alias("ingests"),
    )
    row = bounds.first()
    low, high = (row.low, row.high) if row is not None else (None, None)
    if low is None or row is None:
        counted = records.withColumn(RECENT_COUNT, F.lit(0).cast("bigint"))
        if partitions:
            counted = counted.repartition(partitions, "transaction_id").sortWithinPartitions(
                "transaction_id", "ingest_id"
            )
        return counted
    earliest = low - timedelta(seconds=rules.velocity_window_seconds)
    spark = records.sparkSession
    completed = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
    if whole_ingests:
        completed = completed.filter(~F.col("ingest_id").isin(*row.ingests))
    counted_against = (
        spark.table(settings.table(TRANSACTIONS))
        .filter(F.col("event_time").between(F.lit(earliest), F.lit(high)))
        .join(F.broadcast(completed.select("ingest_id")), "ingest_id", "left_semi")
        .select("account_id", "event_time", F.lit(None).alias(_RECORD))
    )
    both = (
        records.select("account_id", "event_time", F.struct(*records.columns).alias(_RECORD))
        .unionByName(counted_against)
        .select(
            F.xxhash64("account_id").alias(_ACCOUNT_HASH),
            "account_id",
            F.col("event_time").cast("long").alias(_EVENT_SECOND),
            _RECORD,
        )
    )
    if partitions:
        # The window's ordering is a prefix of this sort, so Spark sorts once.
        both = both.repartition(partitions, "account_id").sortWithinPartitions(
            _ACCOUNT_HASH, "account_id", _EVENT_SECOND,
            f"{_RECORD}.transaction_id", f"{_RECORD}.ingest_id",
        )  # fmt: skip
    window = (
        Window.partitionBy(_ACCOUNT_HASH, "account_id")
        .orderBy(_EVENT_SECOND)
        .rangeBetween(-rules.velocity_window_seconds, 0)
    )
    # A range frame holds every row of the account in [t - window, t], equal times included.
    is_record = F.col(_RECORD).isNotNull()
    counts = F.count(F.lit(1) if whole_ingests else F.when(~is_record, F.lit(1))).over(window)
    return (
        both.withColumn(RECENT_COUNT, counts).filter(is_record).select(f"{_RECORD}.*", RECENT_COUNT)
    )


def assess_with_spark(records: DataFrame, rates: FxRates, rules: FinancialRules) -> DataFrame:
    """The same rules as native Spark expressions (the benchmark's ceiling, and a test oracle)."""
    from pyspark.sql import functions as F

    daily = F.broadcast(rates.spark_frame(records.sparkSession))
    fee_rows = [(ch, fee.percent, fee.fixed) for ch, fee in rules.fees.items()]
    fees = F.broadcast(
        records.sparkSession.createDataFrame(
            fee_rows, "channel string, percent decimal(9,4), fixed decimal(9,4)"
        )
    )
    day = F.least(F.to_date("event_time"), F.lit(rates.last_day))
    joined = (
        records.withColumn("rate_day", day)
        .join(daily, ["currency", "rate_day"], "left")
        .join(fees, "channel", "left")
    )
    amount_base = F.round(F.col("amount") * F.col("rate"), 2).cast("decimal(18,2)")
    with_amount = joined.withColumn("amount_base", amount_base)
    fee_base = F.round(F.abs("amount_base") * F.col("percent") + F.col("fixed"), 2)
    account = F.coalesce(F.col("account_id"), F.lit(""))
    flags = F.filter(
        F.array(
            F.when(F.abs("amount_base") >= F.lit(rules.large_amount), F.lit(LARGE_AMOUNT)),
            F.when(
                account.rlike(IBAN_COUNTRY.pattern)
                & (F.substring(account, 1, 2) != F.col("country")),
                F.lit(CROSS_BORDER),
            ),
            F.when(F.col("mcc").isin(*sorted(rules.high_risk_mcc)), F.lit(HIGH_RISK_MCC)),
            F.when(
                F.coalesce(F.col(RECENT_COUNT), F.lit(0)) > rules.velocity_limit, F.lit(VELOCITY)
            ),
        ),
        lambda flag: flag.isNotNull(),
    )
    failed = F.col("rate").isNull() | F.col("percent").isNull()
    return with_amount.select(
        "transaction_id",
        F.when(failed, None).when(F.size(flags) > 0, REVIEW).otherwise(CLEAR).alias("result"),
        F.when(failed, None).otherwise(F.lit(rules.base_currency)).alias("base_currency"),
        F.when(failed, None).otherwise(F.col("amount_base")).alias("amount_base"),
        F.when(failed, None).otherwise(fee_base.cast("decimal(18,2)")).alias("fee_base"),
        F.when(failed, None).otherwise(flags).alias("risk_flags"),
        F.when(F.col("rate").isNull(), FX_RATE_MISSING)
        .when(F.col("percent").isNull(), UNKNOWN_FEE_CHANNEL)
        .alias("error_class"),
    )
