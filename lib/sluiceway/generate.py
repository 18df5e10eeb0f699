"""Deterministic sample landing files with realistic distributions and known defects.

Bulk rows are built column-wise with numpy/Arrow (10M records in about a minute); rows that
need quoting (commas, quotes, newlines in the description) and defect rows are written with
Python's csv module. A manifest beside the file states what a correct ingest must find.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sluiceway import contract as c

ROWS_PER_BLOCK = 250_000
QUOTED_SHARE = 0.02  # valid rows whose description needs quoting
MANIFEST_SUFFIX = ".manifest.json"

CURRENCY_WEIGHTS = {"EUR": 0.46, "USD": 0.22, "GBP": 0.12, "CHF": 0.05, "SEK": 0.04,
                    "PLN": 0.04, "JPY": 0.04, "DKK": 0.03}  # fmt: skip
COUNTRY_WEIGHTS = {"DE": 0.25, "FR": 0.14, "NL": 0.1, "GB": 0.12, "US": 0.12, "ES": 0.07,
                   "IT": 0.07, "CH": 0.04, "SE": 0.03, "PL": 0.03, "JP": 0.03}  # fmt: skip
STATUS_WEIGHTS = {"settled": 0.86, "pending": 0.07, "failed": 0.05, "reversed": 0.02}
CHANNEL_WEIGHTS = {"card_present": 0.42, "ecommerce": 0.33, "mobile": 0.1, "transfer": 0.08,
                   "direct_debit": 0.04, "atm": 0.03}  # fmt: skip
MCC_WEIGHTS = {"5411": 0.22, "5812": 0.14, "5999": 0.1, "4111": 0.08, "5732": 0.06,
               "5541": 0.08, "6011": 0.03, "7995": 0.01, "5967": 0.01, "4829": 0.02,
               "5311": 0.08, "5912": 0.07, "7011": 0.05, "4511": 0.05}  # fmt: skip
DESCRIPTIONS = ("Card purchase", "Online order", "Grocery store", "Monthly subscription",
                "Fuel station", "Restaurant bill", "Public transport", "Pharmacy",
                "Electronics store", "Hotel booking", "Airline ticket", "Cash out")  # fmt: skip
# Valid values that need RFC 4180 quoting: commas, doubled quotes, a newline, non-ASCII.
QUOTED_DESCRIPTIONS = ('Groceries, weekly', 'Café "Central", Wien', 'Refund for order\n#4411',
                       'Transfer "rent", March', 'Zahlung für Bücher, Köln')  # fmt: skip


@dataclass
class Manifest:
    """What a correct ingest of the generated file must report."""

    file: str
    records: int = 0
    accepted: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    accepted_cents_by_currency: Counter[str] = field(default_factory=Counter)
    accepted_count_by_currency: Counter[str] = field(default_factory=Counter)
    sha256: str = ""
    seed: int = 0
    defect_rate: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "seed": self.seed,
            "defect_rate": self.defect_rate,
            "records": self.records,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "accepted_amount_by_currency": {
                currency: str(Decimal(cents).scaleb(-2))
                for currency, cents in sorted(self.accepted_cents_by_currency.items())
            },
            "accepted_count_by_currency": dict(sorted(self.accepted_count_by_currency.items())),
            "not_generated": [c.ALREADY_INGESTED],
        }


def manifest_path(landing_file: str | Path) -> Path:
    """Where the manifest of a landing file lives: beside it, same name plus .manifest.json."""
    return Path(f"{landing_file}{MANIFEST_SUFFIX}")


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(weights))
    probabilities = np.array(list(weights.values()))
    return keys[rng.choice(len(keys), size=size, p=probabilities / probabilities.sum())]


def _bulk_block(rng: np.random.Generator, first_index: int, size: int, day: datetime) -> dict:
    """One block of valid records as numpy/Arrow columns, plus the amount in cents."""
    index = np.arange(first_index, first_index + size)
    # A skewed pool of accounts, so some accounts are busy (the risk rules look for that).
    accounts = (rng.pareto(1.2, size) * 1_000).astype(np.int64) % 2_000_000 + 37_000_000_000
    cents = np.clip(np.round(rng.lognormal(3.4, 1.3, size) * 100), 1, 2_500_000_00).astype(np.int64)
    status = _choice(rng, STATUS_WEIGHTS, size)
    cents = np.where(status == "reversed", -cents, cents)
    seconds = rng.integers(0, 86_400, size) + int(day.timestamp())
    sign = np.where(cents < 0, "-", "")
    whole = pa.array(np.abs(cents) // 100).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(np.abs(cents) % 100).cast(pa.string()), 2, "0")
    columns = {
        "transaction_id": pc.binary_join_element_wise(
            "TX", pc.utf8_lpad(pa.array(index).cast(pa.string()), 11, "0"), ""
        ),
        "account_id": pc.binary_join_element_wise(
            "DE89", pc.utf8_lpad(pa.array(accounts).cast(pa.string()), 18, "0"), ""
        ),
        "counterparty_id": pc.binary_join_element_wise(
            "M", pc.utf8_lpad(pa.array(rng.zipf(1.6, size) % 200_000).cast(pa.string()), 7, "0"), ""
        ),
        "amount": pc.binary_join_element_wise(pa.array(sign), whole, ".", frac, ""),
        "currency": pa.array(_choice(rng, CURRENCY_WEIGHTS, size)),
        "event_time": pc.strftime(
            pa.array(seconds.astype("datetime64[s]")).cast(pa.timestamp("s", tz="UTC")),
            format="%Y-%m-%dT%H:%M:%SZ",
        ),
        "status": pa.array(status),
        "channel": pa.array(_choice(rng, CHANNEL_WEIGHTS, size)),
        "mcc": pa.array(_choice(rng, MCC_WEIGHTS, size)),
        "country": pa.array(_choice(rng, COUNTRY_WEIGHTS, size)),
        "description": pa.array(np.array(DESCRIPTIONS)[rng.integers(0, len(DESCRIPTIONS), size)]),
    }
    return {"table": pa.table(columns), "cents": cents}


def _csv_line(fields: list[str]) -> bytes:
    """One record without its line terminator, quoted only where RFC 4180 needs it."""
    out = io.StringIO()
    # The terminator must contain \n: the writer quotes fields holding terminator characters.
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()[:-1].encode("utf-8")


# Each defect changes one valid row so that exactly one reason code applies.
def _set(column: str, *values: str) -> Callable[[list[str], int], list[str]]:
    position = c.COLUMN_NAMES.index(column)

    def apply(fields: list[str], variant: int) -> list[str]:
        changed = list(fields)
        changed[position] = values[variant % len(values)]
        return changed

    return apply


VALUE_DEFECTS: dict[str, Callable[[list[str], int], list[str]]] = {
    c.MISSING_REQUIRED: _set("account_id", ""),
    c.BAD_AMOUNT_FORMAT: _set("amount", "12.345", "1,000.00", "1e3", "12.5.0", "EUR 10", "+5.00"),
    c.AMOUNT_OUT_OF_RANGE: _set("amount", "2500000000.00", "-1000000000.01"),
    c.UNKNOWN_CURRENCY: _set("currency", "XXY", "usd", "EURO"),
    c.UNKNOWN_COUNTRY: _set("country", "XX", "de", "DEU"),
    c.BAD_EVENT_TIME: _set(
        "event_time", "2026-02-30T10:00:00Z", "25/11/2026 10:00", "2026-11-25T10:00:00"
    ),
    c.UNKNOWN_STATUS: _set("status", "done", "SETTLED"),
    c.UNKNOWN_CHANNEL: _set("channel", "fax", "pigeon"),
    c.BAD_MCC: _set("mcc", "54A1", "541"),
    c.WRONG_FIELD_COUNT: lambda fields, variant: fields[:-1] if variant % 2 else [*fields, "extra"],
}
LINE_DEFECTS = (c.INVALID_ENCODING, c.BAD_QUOTING, c.DUPLICATE_IN_FILE)
DEFECT_KINDS = (*VALUE_DEFECTS, *LINE_DEFECTS)


def generate_landing_file(
    out: str | Path,
    records: int,
    seed: int = 7,
    defect_rate: float = 0.0,
    compress: bool = False,
    day: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Write `records` records (plus the header) to `out` and its manifest beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    day = day or datetime(2026, 11, 25, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    manifest = Manifest(file=out.name, seed=seed, defect_rate=defect_rate)
    digest = hashlib.sha256()
    opener = gzip.open if compress else open
    with opener(out, "wb") as raw_sink:
        sink = _HashingWriter(raw_sink, digest, compress)
        sink.write(c.HEADER_LINE.encode() + b"\n")
        written = 0
        with_unterminated = defect_rate > 0 and records > 0
        bulk_records = records - 1 if with_unterminated else records
        while written < bulk_records:
            size = min(ROWS_PER_BLOCK, bulk_records - written)
            sink.write(_block_bytes(rng, written, size, day, defect_rate, manifest))
            written += size
            if progress:
                progress(written)
        if with_unterminated:
            # An unterminated quote swallows the rest of the file, so it can only come last.
            sink.write(
                b'TXUNTERMINATED,DE00,M1,1.00,EUR,2026-11-25T00:00:00Z,settled,atm,6011,DE,"open'
            )
            manifest.records += 1
            manifest.rejected_by_reason[c.UNTERMINATED_QUOTE] += 1
    manifest.sha256 = digest.hexdigest() if not compress else _sha256_of(out)
    manifest_path(out).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


class _HashingWriter:
    def __init__(self, sink, digest, compress: bool) -> None:
        self.sink, self.digest, self.compress = sink, digest, compress

    def write(self, data: bytes) -> None:
        self.sink.write(data)
        if not self.compress:
            self.digest.update(data)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _block_bytes(
    rng: np.random.Generator,
    first_index: int,
    size: int,
    day: datetime,
    defect_rate: float,
    manifest: Manifest,
) -> bytes:
    block = _bulk_block(rng, first_index, size, day)
    table, cents = block["table"], block["cents"]
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    lines = buffer.getvalue().split(b"\n")[:-1]
    currencies = table.column("currency").to_numpy(zero_copy_only=False)
    accepted = np.ones(size, dtype=bool)
    draw = rng.random(size)
    special = np.flatnonzero(draw < defect_rate + QUOTED_SHARE)
    kinds = rng.integers(0, 10_000, len(special))
    touched: set[int] = set()
    special_rows = table.take(pa.array(special, pa.int64())).to_pylist()
    for position, kind, row in zip(special, kinds, special_rows, strict=True):
        values = [row[name] for name in c.COLUMN_NAMES]
        reason = DEFECT_KINDS[kind % len(DEFECT_KINDS)]
        # A duplicate needs a plain predecessor whose id the reader can see.
        usable = reason != c.DUPLICATE_IN_FILE or (position > 0 and position - 1 not in touched)
        touched.add(int(position))
        if draw[position] >= defect_rate or not usable:
            values[-1] = QUOTED_DESCRIPTIONS[kind % len(QUOTED_DESCRIPTIONS)]
            lines[position] = _csv_line(values)
            continue
        if reason == c.DUPLICATE_IN_FILE:
            values[0] = table.column("transaction_id")[position - 1].as_py()
        lines[position] = _defect_line(reason, values, int(kind))
        accepted[position] = False
        manifest.rejected_by_reason[reason] += 1
    manifest.records += size
    manifest.accepted += int(accepted.sum())
    for currency in CURRENCY_WEIGHTS:
        chosen = accepted & (currencies == currency)
        manifest.accepted_cents_by_currency[str(currency)] += int(cents[chosen].sum())
        manifest.accepted_count_by_currency[str(currency)] += int(chosen.sum())
    return b"\n".join(lines) + b"\n"


def _defect_line(reason: str, values: list[str], variant: int) -> bytes:
    if reason in VALUE_DEFECTS:
        return _csv_line(VALUE_DEFECTS[reason](values, variant))
    if reason == c.INVALID_ENCODING:
        values[-1] = "Cafe Latin-1"
        return _csv_line(values).replace(b"Cafe Latin-1", b"Caf\xe9 Latin-1")
    if reason == c.BAD_QUOTING:
        return _csv_line(values[:-1]) + b',"' + values[-1].encode() + b'"x'
    return _csv_line(values)
