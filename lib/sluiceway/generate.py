"""Deterministic sample landing files with realistic distributions and known defects.

Bulk rows are built column-wise with numpy/Arrow (10M records in about a minute); rows that
need quoting (commas, quotes, newlines in the description) and defect rows are written with
Python's csv module. A manifest beside the file states what a correct ingest must find,
counted both in records and in physical lines (a quoted newline makes a record two lines).

The hostile shapes partners' export tools produce are options: CRLF or old-Mac CR-only line
endings, and a .gz made of several concatenated gzip members (`cat a.gz b.gz`).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sluiceway import contract as c
from sluiceway.errors import ConfigurationError
from sluiceway.locations import manifest_location

ROWS_PER_BLOCK = 250_000
QUOTED_SHARE = 0.02  # valid rows whose description needs quoting
LINE_ENDINGS: dict[str, bytes] = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
DEFAULT_LINE_ENDING = "lf"

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
# Unquoted descriptions with an inch mark: a quote inside an unquoted field (bad_quoting).
STRAY_QUOTE_DESCRIPTIONS = ('12" pizza', 'Monitor 27" display', 'Pipe fitting 3/4" brass')


@dataclass
class Manifest:
    """What a correct ingest of the generated file must report."""

    file: str
    records: int = 0
    lines: int = 0  # physical lines after the header
    accepted: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    accepted_cents_by_currency: Counter[str] = field(default_factory=Counter)
    accepted_count_by_currency: Counter[str] = field(default_factory=Counter)
    sha256: str = ""
    seed: int = 0
    defect_rate: float = 0.0
    line_ending: str = DEFAULT_LINE_ENDING
    gzip_members: int = 0  # 0: not compressed

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "seed": self.seed,
            "defect_rate": self.defect_rate,
            "line_ending": self.line_ending,
            "gzip_members": self.gzip_members,
            "records": self.records,
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "accepted_amount_by_currency": {
                currency: str(Decimal(cents).scaleb(-2))
                for currency, cents in sorted(self.accepted_cents_by_currency.items())
            },
            "accepted_count_by_currency": dict(sorted(self.accepted_count_by_currency.items())),
            "not_generated": sorted(set(c.REASONS) - set(DEFECT_KINDS.values())),
        }


def manifest_path(landing_file: str | Path) -> Path:
    """The manifest file `generate_landing_file` writes beside a local landing file."""
    return Path(manifest_location(str(landing_file)))


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray[Any, Any]:
    keys = np.array(list(weights))
    probabilities = np.array(list(weights.values()))
    chosen: np.ndarray[Any, Any] = keys[
        rng.choice(len(keys), size=size, p=probabilities / probabilities.sum())
    ]
    return chosen


def _bulk_block(
    rng: np.random.Generator, first_index: int, size: int, day: datetime
) -> dict[str, Any]:
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


# Line defects write the description by hand: the csv module would quote it correctly.
# An unclosed quote swallows text up to the next quote in the file, so every quote this
# generator writes must be followed by a character other than `,`, `"` or a line end (an
# opening quote before a letter or digit, an inch mark before a space): the swallowed text can
# then never close into a well-formed record, and the ingest rejects only the unclosed line.
def _invalid_encoding(values: list[str], variant: int) -> bytes:
    return _csv_line(values[:-1]) + b",Caf\xe9 Latin-1"


def _text_after_closing_quote(values: list[str], variant: int) -> bytes:
    return _csv_line(values[:-1]) + b',"' + values[-1].encode() + b'"x'


def _stray_quote(values: list[str], variant: int) -> bytes:
    description = STRAY_QUOTE_DESCRIPTIONS[variant % len(STRAY_QUOTE_DESCRIPTIONS)]
    return _csv_line(values[:-1]) + b"," + description.encode()


def _unclosed_quote(values: list[str], variant: int) -> bytes:
    return _csv_line(values[:-1]) + b',"' + values[-1].encode()


def _duplicate(values: list[str], variant: int) -> bytes:
    return _csv_line(values)  # the caller gave it its predecessor's transaction_id


LINE_DEFECTS: dict[str, tuple[str, Callable[[list[str], int], bytes]]] = {
    "invalid_encoding": (c.INVALID_ENCODING, _invalid_encoding),
    "text_after_closing_quote": (c.BAD_QUOTING, _text_after_closing_quote),
    "duplicate_in_file": (c.DUPLICATE_IN_FILE, _duplicate),
    "stray_quote": (c.BAD_QUOTING, _stray_quote),
    "unclosed_quote": (c.UNTERMINATED_QUOTE, _unclosed_quote),
}
# Every kind of defect the generator draws, and the one reason code it must produce.
DEFECT_KINDS: dict[str, str] = {
    **{reason: reason for reason in VALUE_DEFECTS},
    **{kind: reason for kind, (reason, _) in LINE_DEFECTS.items()},
}
# The last record of a file with defects: a quote left open by a truncated export.
UNTERMINATED_AT_END = (
    b'TXUNTERMINATED,DE00,M1,1.00,EUR,2026-11-25T00:00:00Z,settled,atm,6011,DE,"open'
)


def generate_landing_file(
    out: str | Path,
    records: int,
    seed: int = 7,
    defect_rate: float = 0.0,
    compress: bool = False,
    day: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    line_ending: str = DEFAULT_LINE_ENDING,
    gzip_members: int = 1,
    first_id: int = 0,
) -> Manifest:
    """Write `records` records (plus the header) to `out` and its manifest beside it.

    Transaction ids are numbered from `first_id`, so files of different days can hold
    distinct ids.

    `line_ending` ends every physical line, the ones inside quoted descriptions too, as the
    exporting tool would. With `compress`, the .gz is `gzip_members` concatenated members split
    at record boundaries; the uncompressed bytes are the same whatever the number of members.
    """
    ending = _check_options(line_ending, compress, gzip_members)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    day = day or datetime(2026, 11, 25, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    manifest = Manifest(
        file=out.name,
        seed=seed,
        defect_rate=defect_rate,
        line_ending=line_ending,
        gzip_members=gzip_members if compress else 0,
    )
    with_unterminated = defect_rate > 0 and records > 0
    bulk_records = records - 1 if with_unterminated else records
    # Record numbers (0-based) at which a new gzip member starts.
    member_starts = deque(records * k // gzip_members for k in range(1, gzip_members))
    with _LandingSink(out, compress) as sink:
        sink.write(c.HEADER_LINE.encode() + ending)
        written = 0
        while written < bulk_records:
            size = min(ROWS_PER_BLOCK, bulk_records - written)
            lines = _block_lines(rng, first_id + written, size, day, defect_rate, manifest)
            _write_records(sink, lines, written, member_starts, ending)
            written += size
            if progress:
                progress(written)
        if with_unterminated:
            # Nothing follows it, so it stays open to the end of the file (no line end either).
            _write_records(sink, [UNTERMINATED_AT_END], written, member_starts, ending, False)
            manifest.records += 1
            manifest.lines += 1
            manifest.rejected_by_reason[c.UNTERMINATED_QUOTE] += 1
        for _ in member_starts:  # fewer records than members: the rest are empty members
            sink.next_member()
    manifest.sha256 = sink.sha256()
    manifest_path(out).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    return manifest


def generate_records(
    records: int,
    seed: int = 7,
    defect_rate: float = 0.0,
    day: datetime | None = None,
    first_id: int = 0,
) -> tuple[list[bytes], Manifest]:
    """The records a landing file of these options holds, one bytes value each (a quoted
    newline stays inside): the values a partner publishes to a Kafka topic, one per record.
    The manifest counts them as `generate_landing_file` does (no file, so no sha256)."""
    day = day or datetime(2026, 11, 25, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    manifest = Manifest(file="", seed=seed, defect_rate=defect_rate)
    values: list[bytes] = []
    with_unterminated = defect_rate > 0 and records > 0
    bulk_records = records - 1 if with_unterminated else records
    while len(values) < bulk_records:
        size = min(ROWS_PER_BLOCK, bulk_records - len(values))
        values += _block_lines(rng, first_id + len(values), size, day, defect_rate, manifest)
    if with_unterminated:
        values.append(UNTERMINATED_AT_END)
        manifest.records += 1
        manifest.lines += 1
        manifest.rejected_by_reason[c.UNTERMINATED_QUOTE] += 1
    return values, manifest


def _check_options(line_ending: str, compress: bool, gzip_members: int) -> bytes:
    """The line-ending bytes, after checking the options that shape the file."""
    if line_ending not in LINE_ENDINGS:
        raise ConfigurationError(
            f"line ending {line_ending!r} is not one of {', '.join(LINE_ENDINGS)}"
        )
    if gzip_members < 1 or (gzip_members > 1 and not compress):
        raise ConfigurationError(
            f"gzip members {gzip_members}: give at least 1, and more than 1 only with --gzip"
        )
    return LINE_ENDINGS[line_ending]


class _LandingSink:
    """The landing file being written: plain bytes, or gzip members on one file handle."""

    def __init__(self, path: Path, compress: bool) -> None:
        self.path = path
        self.compress = compress
        self.handle = path.open("wb")
        self.digest = hashlib.sha256()
        self.member = self._open_member() if compress else None

    def __enter__(self) -> _LandingSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.member is not None:
            self.member.close()
        self.handle.close()

    def _open_member(self) -> gzip.GzipFile:
        # No file name and mtime 0 in the member header: the same seed gives the same .gz bytes.
        return gzip.GzipFile(filename="", mode="wb", fileobj=self.handle, mtime=0)

    def write(self, data: bytes) -> None:
        if self.member is None:
            self.handle.write(data)
            self.digest.update(data)
        else:
            self.member.write(data)

    def next_member(self) -> None:
        """End the current gzip member (its trailer) and start the next one on the same file."""
        if self.member is not None:
            self.member.close()  # leaves the file handle open
            self.member = self._open_member()

    def sha256(self) -> str:
        """The file's identity as delivered: for a .gz, the hash of the compressed bytes."""
        return _sha256_of(self.path) if self.compress else self.digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _write_records(
    sink: _LandingSink,
    lines: list[bytes],
    first: int,
    member_starts: deque[int],
    ending: bytes,
    terminated: bool = True,
) -> None:
    """Write records first, first+1, ...; start each planned gzip member before its record."""
    start = 0
    while member_starts and member_starts[0] < first + len(lines):
        cut = member_starts.popleft() - first
        sink.write(_with_line_ends(lines[start:cut], ending))
        sink.next_member()
        start = cut
    sink.write(_with_line_ends(lines[start:], ending, terminated))


def _with_line_ends(lines: list[bytes], ending: bytes, terminated: bool = True) -> bytes:
    """The records joined by `ending`; newlines inside quoted fields become `ending` too."""
    if not lines:
        return b""
    data = b"\n".join(lines) + (b"\n" if terminated else b"")
    return data if ending == b"\n" else data.replace(b"\n", ending)


def _block_lines(
    rng: np.random.Generator,
    first_index: int,
    size: int,
    day: datetime,
    defect_rate: float,
    manifest: Manifest,
) -> list[bytes]:
    """One block of records, each without its line end (a quoted newline stays inside)."""
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
    kind_names = tuple(DEFECT_KINDS)
    touched: set[int] = set()
    special_rows = table.take(pa.array(special, pa.int64())).to_pylist()
    for position, kind, row in zip(special, kinds, special_rows, strict=True):
        values = [row[name] for name in c.COLUMN_NAMES]
        defect = kind_names[kind % len(kind_names)]
        reason = DEFECT_KINDS[defect]
        # A duplicate needs a plain predecessor whose id the reader can see.
        usable = reason != c.DUPLICATE_IN_FILE or (position > 0 and position - 1 not in touched)
        touched.add(int(position))
        if draw[position] >= defect_rate or not usable:
            values[-1] = QUOTED_DESCRIPTIONS[kind % len(QUOTED_DESCRIPTIONS)]
            lines[position] = _csv_line(values)
            continue
        if reason == c.DUPLICATE_IN_FILE:
            values[0] = table.column("transaction_id")[position - 1].as_py()
        # The rest of the draw picks the variant, independent of the kind.
        lines[position] = _defect_line(defect, values, int(kind) // len(kind_names))
        accepted[position] = False
        manifest.rejected_by_reason[reason] += 1
    manifest.records += size
    # Bulk lines hold no newline; a quoted description may (one record, two physical lines).
    manifest.lines += size + sum(lines[position].count(b"\n") for position in special)
    manifest.accepted += int(accepted.sum())
    for currency in CURRENCY_WEIGHTS:
        chosen = accepted & (currencies == currency)
        manifest.accepted_cents_by_currency[str(currency)] += int(cents[chosen].sum())
        manifest.accepted_count_by_currency[str(currency)] += int(chosen.sum())
    return lines


def _defect_line(kind: str, values: list[str], variant: int) -> bytes:
    if kind in VALUE_DEFECTS:
        return _csv_line(VALUE_DEFECTS[kind](values, variant))
    _, line = LINE_DEFECTS[kind]
    return line(values, variant)
