"""The transactions feed's contract under the names the code has always used.

The contract itself is the feed file `data/feeds/transactions.toml` (loaded by `feeds`):
every value here is read from it, so the file stays the one place a rule changes. The
generator, the benchmarks and code that only ever handles the transactions feed read these
names; code that serves every feed takes a `Feed`.
"""

from __future__ import annotations

from decimal import Decimal

from sluiceway.feeds import (
    ALREADY_INGESTED,
    BAD_IDENTIFIER,
    BAD_QUOTING,
    DUPLICATE_IN_FILE,
    FIELD_TOO_LONG,
    INVALID_ENCODING,
    ISO3166_ALPHA2,
    ISO4217,
    MISSING_REQUIRED,
    TIMESTAMP_PATTERN,
    UNTERMINATED_QUOTE,
    WRONG_FIELD_COUNT,
    Column,
    Feed,
    Rule,
    decimal_pattern,
    decimal_scale,
    load_feed,
)

__all__ = [
    "ALREADY_INGESTED",
    "BAD_IDENTIFIER",
    "BAD_QUOTING",
    "DUPLICATE_IN_FILE",
    "FIELD_TOO_LONG",
    "INVALID_ENCODING",
    "MISSING_REQUIRED",
    "UNTERMINATED_QUOTE",
    "WRONG_FIELD_COUNT",
    "Column",
]

TRANSACTIONS_FEED = load_feed()


def _rule(column: str, kind: str) -> Rule:
    return next(
        rule for rule in TRANSACTIONS_FEED.rules if rule.column == column and rule.kind == kind
    )


# ---------------------------------------------------------------- reason codes
BAD_AMOUNT_FORMAT = _rule("amount", "decimal").reason
AMOUNT_OUT_OF_RANGE = _rule("amount", "range").reason
UNKNOWN_CURRENCY = _rule("currency", "allowed").reason
UNKNOWN_COUNTRY = _rule("country", "allowed").reason
BAD_EVENT_TIME = _rule("event_time", "timestamp").reason
EVENT_TIME_OUT_OF_RANGE = _rule("event_time", "range").reason
UNKNOWN_STATUS = _rule("status", "allowed").reason
UNKNOWN_CHANNEL = _rule("channel", "allowed").reason
BAD_MCC = _rule("mcc", "pattern").reason
# Machine-readable codes stored in rejected_records.reasons and counted in the ledger.
REASONS: dict[str, str] = TRANSACTIONS_FEED.reasons

# ---------------------------------------------------------------- allowed values
STATUSES = TRANSACTIONS_FEED.values["statuses"]
CHANNELS = TRANSACTIONS_FEED.values["channels"]
CURRENCIES = ISO4217
COUNTRIES = ISO3166_ALPHA2

AMOUNT_PRECISION, AMOUNT_SCALE = decimal_scale(TRANSACTIONS_FEED.column("amount"))
AMOUNT_MIN = Decimal(_rule("amount", "range").minimum or "")
AMOUNT_MAX = Decimal(_rule("amount", "range").maximum or "")
# A plain decimal: optional minus, digits without separators, at most 2 places.
AMOUNT_PATTERN = decimal_pattern(TRANSACTIONS_FEED.column("amount"))
EVENT_TIME_PATTERN = TIMESTAMP_PATTERN
MCC_PATTERN = _rule("mcc", "pattern").pattern
# Ids (columns with `identifier`) are compared byte for byte: duplicate_in_file,
# already_ingested, the per-account rules. A character no one can see would make one
# transaction two ids, so these are bad_identifier anywhere in an id (an RE2 search):
# controls (Cc), format characters (Cf: zero-width U+200B..U+200D, U+2060, BOM U+FEFF, bidi
# marks, soft hyphen), line and paragraph separators, and every space but U+0020 (no-break,
# ideographic). U+0020 itself is allowed inside an id, not at either end. Rejected, not
# stripped: which spelling the partner's system holds is theirs to say (ADR 0004).
IDENTIFIER_FORBIDDEN_PATTERN = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|[^\P{Zs} ]"
IDENTIFIER_EDGE = " "
EVENT_TIME_MIN = _rule("event_time", "range").minimum or ""
EVENT_TIME_MAX = _rule("event_time", "range").maximum or ""

DESCRIPTION_MAX_LENGTH = TRANSACTIONS_FEED.column("description").max_length

COLUMNS: tuple[Column, ...] = TRANSACTIONS_FEED.columns
COLUMN_NAMES: tuple[str, ...] = TRANSACTIONS_FEED.column_names
HEADER_LINE = TRANSACTIONS_FEED.header_line
ENCODING = TRANSACTIONS_FEED.encoding
# The longest record (a quoted description may hold newlines) before an opened quote is taken
# for an unclosed one. A setting (max_record_bytes) can change it.
MAX_RECORD_BYTES = TRANSACTIONS_FEED.max_record_bytes
DELIMITER = TRANSACTIONS_FEED.delimiter
QUOTE = TRANSACTIONS_FEED.quote


def contract_markdown(feed: Feed = TRANSACTIONS_FEED) -> str:
    """The feed's contract as Markdown tables, for the README and `sluiceway contract`."""
    rows = ["| column | type | required | max length | rule |", "|---|---|---|---|---|"]
    rows += [
        f"| `{c.name}` | {c.table_type} | {'yes' if c.required else 'no'} | {c.max_length} "
        f"| {c.description} |"
        for c in feed.columns
    ]
    rows += ["", "| reason code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in feed.reasons.items()]
    return "\n".join(rows)
