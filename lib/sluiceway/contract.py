"""The landing-file contract: columns, types, rules and reason codes, declared once.

The generator, the reader, the validation, the table DDL and the README's contract table all
read from here; a rule changed here changes everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# ---------------------------------------------------------------- reason codes
# Machine-readable codes stored in rejected_records.reasons and counted in the ledger.
WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_ENCODING = "invalid_encoding"
UNTERMINATED_QUOTE = "unterminated_quote"
BAD_QUOTING = "bad_quoting"
MISSING_REQUIRED = "missing_required"
BAD_IDENTIFIER = "bad_identifier"
BAD_AMOUNT_FORMAT = "bad_amount_format"
AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
UNKNOWN_CURRENCY = "unknown_currency"
UNKNOWN_COUNTRY = "unknown_country"
BAD_EVENT_TIME = "bad_event_time"
EVENT_TIME_OUT_OF_RANGE = "event_time_out_of_range"
FIELD_TOO_LONG = "field_too_long"
UNKNOWN_STATUS = "unknown_status"
UNKNOWN_CHANNEL = "unknown_channel"
BAD_MCC = "bad_mcc"
DUPLICATE_IN_FILE = "duplicate_in_file"
ALREADY_INGESTED = "already_ingested"

REASONS: dict[str, str] = {
    WRONG_FIELD_COUNT: "the line does not have exactly one field per contract column",
    INVALID_ENCODING: "the line is not valid UTF-8",
    UNTERMINATED_QUOTE: (
        "a quote opened on this line does not close cleanly within the record-size cap; "
        "only this line is rejected, the next line is read as a new record"
    ),
    BAD_QUOTING: "a quote inside an unquoted field, or text after a closing quote (RFC 4180)",
    FIELD_TOO_LONG: "a field is longer than its column allows (see the contract's max length)",
    MISSING_REQUIRED: "a required field is empty",
    BAD_IDENTIFIER: (
        "transaction_id, account_id or counterparty_id holds a control or invisible character "
        "(zero-width, BOM, a space other than U+0020) or starts or ends with a space"
    ),
    BAD_AMOUNT_FORMAT: "amount is not a plain decimal with at most 2 places (no 1,000.00, no 1e3)",
    AMOUNT_OUT_OF_RANGE: "amount is outside the allowed range",
    UNKNOWN_CURRENCY: "currency is not an ISO 4217 code",
    UNKNOWN_COUNTRY: "country is not an ISO 3166-1 alpha-2 code",
    BAD_EVENT_TIME: "event_time is not an ISO 8601 timestamp with a UTC offset",
    EVENT_TIME_OUT_OF_RANGE: "event_time is outside the years every reader handles",
    UNKNOWN_STATUS: "status is not one of the allowed values",
    UNKNOWN_CHANNEL: "channel is not one of the allowed values",
    BAD_MCC: "mcc is not a 4-digit merchant category code",
    DUPLICATE_IN_FILE: "transaction_id appears earlier in the same file",
    ALREADY_INGESTED: "transaction_id is already in `transactions` from an earlier file",
}

# ---------------------------------------------------------------- allowed values
STATUSES = ("settled", "pending", "failed", "reversed")
CHANNELS = ("card_present", "ecommerce", "atm", "transfer", "direct_debit", "mobile")

AMOUNT_PRECISION = 18
AMOUNT_SCALE = 2
AMOUNT_MIN = Decimal("-1000000000.00")
AMOUNT_MAX = Decimal("1000000000.00")
# A plain decimal: optional minus, digits without separators, at most 2 places.
AMOUNT_PATTERN = r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$"
# ISO 8601 with date, time and an explicit offset (Z or +hh:mm), optional fractions.
EVENT_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
MCC_PATTERN = r"^[0-9]{4}$"
# Ids (columns with `identifier`) are compared byte for byte: duplicate_in_file,
# already_ingested, the per-account rules. A character no one can see would make one
# transaction two ids, so these are bad_identifier anywhere in an id (an RE2 search):
# controls (Cc), format characters (Cf: zero-width U+200B..U+200D, U+2060, BOM U+FEFF, bidi
# marks, soft hyphen), line and paragraph separators, and every space but U+0020 (no-break,
# ideographic). U+0020 itself is allowed inside an id, not at either end. Rejected, not
# stripped: which spelling the partner's system holds is theirs to say (ADR 0004).
IDENTIFIER_FORBIDDEN_PATTERN = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|[^\P{Zs} ]"
IDENTIFIER_EDGE = " "
# Instants Athena, Spark and Python all represent, with a week's margin for the duplicate
# look-back window: year 1 or 9999 would overflow date arithmetic in one of them.
EVENT_TIME_MIN = "1900-01-01T00:00:00Z"
EVENT_TIME_MAX = "2999-12-31T23:59:59Z"

# Active ISO 4217 currency codes.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)

# ISO 3166-1 alpha-2 country codes.
COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW""".split()
)


# Longer values are rejected as field_too_long: ids and codes are short, and a description
# beyond this is an export fault, not a purchase.
DESCRIPTION_MAX_LENGTH = 4096


@dataclass(frozen=True)
class Column:
    """One landing-file column: its name, its type in `transactions`, and whether it is required."""

    name: str
    table_type: str
    required: bool
    description: str
    max_length: int = 256
    identifier: bool = False  # compared byte for byte: IDENTIFIER_FORBIDDEN_PATTERN applies
    sensitive: bool = False  # masked (last four kept) wherever a rejected record shows it


COLUMNS: tuple[Column, ...] = (
    Column(
        "transaction_id",
        "string",
        True,
        "the partner's unique id of the transaction",
        identifier=True,
    ),
    Column(
        "account_id",
        "string",
        True,
        "the account the transaction belongs to (masked in logs)",
        identifier=True,
        sensitive=True,
    ),
    Column(
        "counterparty_id",
        "string",
        False,
        "the other party's account or merchant id",
        identifier=True,
        sensitive=True,
    ),
    Column(
        "amount",
        f"decimal({AMOUNT_PRECISION},{AMOUNT_SCALE})",
        True,
        f"plain decimal string with at most {AMOUNT_SCALE} places, {AMOUNT_MIN} to {AMOUNT_MAX}",
    ),
    Column("currency", "string", True, "ISO 4217 code, e.g. EUR"),
    Column("event_time", "timestamp", True, "ISO 8601 with offset, e.g. 2026-11-25T13:45:12Z"),
    Column("status", "string", True, f"one of {', '.join(STATUSES)}"),
    Column("channel", "string", True, f"one of {', '.join(CHANNELS)}"),
    Column("mcc", "string", False, "4-digit merchant category code (ISO 18245)"),
    Column("country", "string", True, "ISO 3166-1 alpha-2 code of the merchant or counterparty"),
    Column(
        "description",
        "string",
        False,
        "free text; may hold commas, quotes and newlines",
        max_length=DESCRIPTION_MAX_LENGTH,
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
HEADER_LINE = ",".join(COLUMN_NAMES)
ENCODING = "utf-8"
# The longest record (a quoted description may hold newlines) before an opened quote is taken
# for an unclosed one: generous for any real description, small enough that a stray quote
# costs at most this much re-reading. A setting (max_record_bytes) can change it.
MAX_RECORD_BYTES = 1024 * 1024
DELIMITER = ","
QUOTE = '"'


def contract_markdown() -> str:
    """The contract as Markdown tables, for the README and `sluiceway contract`."""
    rows = ["| column | type | required | max length | rule |", "|---|---|---|---|---|"]
    rows += [
        f"| `{c.name}` | {c.table_type} | {'yes' if c.required else 'no'} | {c.max_length} "
        f"| {c.description} |"
        for c in COLUMNS
    ]
    rows += ["", "| reason code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in REASONS.items()]
    return "\n".join(rows)
