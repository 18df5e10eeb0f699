"""Partner feeds: each feed's contract is a versioned TOML file, checked when it is loaded.

A feed file (docs/feeds.md) holds the landing-file format, the columns with their flags, the
rules with their reason codes and severities, and the namespace of the feed's tables. The
packaged feeds live in `data/feeds/`; an operator adds one by dropping a file in the folder
the `feeds_dir` setting names, with no code change. Every file is checked against
`data/feeds/feed.schema.json` and then for what a schema cannot say (a rule on an unknown
column, a typed column without its parse rule): a mistake is a `ConfigurationError` naming
the file, the key and the problem, before a single record is read.

The rules every feed has (the tokenizer's, the column flags', the duplicate rules on the
feed's key) have fixed codes, declared here once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from sluiceway.arrival import Arrival, arrival_from_feed
from sluiceway.errors import ConfigurationError

PACKAGED_FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
SCHEMA_FILE = PACKAGED_FEEDS / "feed.schema.json"
DEFAULT_FEED = "transactions"

# ---------------------------------------------------------------- the rules every feed has
WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_ENCODING = "invalid_encoding"
UNTERMINATED_QUOTE = "unterminated_quote"
BAD_QUOTING = "bad_quoting"
FIELD_TOO_LONG = "field_too_long"
MISSING_REQUIRED = "missing_required"
BAD_IDENTIFIER = "bad_identifier"
DUPLICATE_IN_FILE = "duplicate_in_file"
ALREADY_INGESTED = "already_ingested"
BUILT_IN_REASONS = (
    WRONG_FIELD_COUNT,
    INVALID_ENCODING,
    UNTERMINATED_QUOTE,
    BAD_QUOTING,
    FIELD_TOO_LONG,
    MISSING_REQUIRED,
    BAD_IDENTIFIER,
    DUPLICATE_IN_FILE,
    ALREADY_INGESTED,
)

SEVERITIES = ("reject", "warn", "fail_file")
# The text of a timestamp column: ISO 8601 with date, time and an explicit offset (Z or
# +hh:mm), optional fractions (ingest/event_time.py reads it).
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
DEFAULT_MAX_LENGTH = 256
# ingest_ledger.accepted_amount_by_currency is decimal(38,2): a control-total column fits it.
LEDGER_AMOUNT_SCALE = 2
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

# ---------------------------------------------------------------- built-in value sets
# Active ISO 4217 currency codes.
ISO4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()
)

# ISO 3166-1 alpha-2 country codes.
ISO3166_ALPHA2 = frozenset(
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

# `values_from` names every feed may use, and how a detail names them.
BUILT_IN_VALUES: dict[str, tuple[frozenset[str], str]] = {
    "iso4217": (ISO4217, "an ISO 4217 code"),
    "iso3166_alpha2": (ISO3166_ALPHA2, "an ISO 3166-1 alpha-2 code"),
}

# What each parse rule demands of the column's type.
_PARSE_RULES = {"decimal": "decimal", "integer": "bigint", "timestamp": "timestamp"}
_DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


@dataclass(frozen=True)
class Column:
    """One landing-file column: its name, its type in the feed's table, and its flags."""

    name: str
    table_type: str
    required: bool
    description: str
    max_length: int = DEFAULT_MAX_LENGTH
    identifier: bool = False  # compared byte for byte: contract.IDENTIFIER_FORBIDDEN_PATTERN
    sensitive: bool = False  # masked wherever a rejected line is shown


@dataclass(frozen=True)
class Rule:
    """One rule of a feed: what it checks on which column, its reason code and severity.

    `kind` is decimal | integer | timestamp (the text parses as the column's type), pattern,
    allowed or range; `expected` completes the detail "<column> '<value>' is not <expected>".
    """

    column: str
    kind: str
    reason: str
    severity: str = "reject"
    meaning: str = ""
    expected: str = ""
    pattern: str = ""
    values: tuple[str, ...] = ()
    minimum: str | None = None
    maximum: str | None = None


@dataclass(frozen=True)
class Feed:
    """A feed's contract as loaded from its file; pickled to the executors with the plan."""

    name: str
    version: int
    description: str
    namespace: str
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    key: str
    event_time: str
    rule_version: str
    path: str
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    header_matching: str = "by_name"
    unknown_columns: str = "fail"
    max_rejected_share: float | None = None
    amount: str | None = None
    currency: str | None = None
    arrival: Arrival | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def header_line(self) -> str:
        return self.delimiter.join(self.column_names)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def typed_columns(self) -> tuple[Column, ...]:
        """The columns whose table type is not text: each has a parse rule and a typed value."""
        return tuple(column for column in self.columns if column.table_type != "string")

    @property
    def fail_file_reasons(self) -> frozenset[str]:
        """Codes whose records make the whole file fail (ingest/run.py decides)."""
        return frozenset(rule.reason for rule in self.rules if rule.severity == "fail_file")

    @property
    def warn_reasons(self) -> frozenset[str]:
        return frozenset(rule.reason for rule in self.rules if rule.severity == "warn")

    @property
    def reasons(self) -> dict[str, str]:
        """Every reason code this feed can give, with its meaning, in display order."""
        identifiers = [column.name for column in self.columns if column.identifier]
        named = (
            ", ".join(identifiers[:-1]) + f" or {identifiers[-1]}"
            if len(identifiers) > 1
            else "".join(identifiers) or "an identifier"
        )
        meanings = {
            WRONG_FIELD_COUNT: "the line does not have exactly one field per contract column",
            INVALID_ENCODING: "the line is not valid UTF-8",
            UNTERMINATED_QUOTE: (
                "a quote opened on this line does not close cleanly within the record-size "
                "cap; only this line is rejected, the next line is read as a new record"
            ),
            BAD_QUOTING: (
                "a quote inside an unquoted field, or text after a closing quote (RFC 4180)"
            ),
            FIELD_TOO_LONG: (
                "a field is longer than its column allows (see the contract's max length)"
            ),
            MISSING_REQUIRED: "a required field is empty",
            BAD_IDENTIFIER: (
                f"{named} holds a control or invisible character "
                "(zero-width, BOM, a space other than U+0020) or starts or ends with a space"
            ),
        }
        for rule in self.rules:
            meanings.setdefault(rule.reason, rule.meaning or f"{rule.column}: {rule.kind}")
        meanings[DUPLICATE_IN_FILE] = f"{self.key} appears earlier in the same file"
        meanings[ALREADY_INGESTED] = f"{self.key} is already in `{self.name}` from an earlier file"
        return meanings


def load_feed(name: str = DEFAULT_FEED, feeds_dir: str = "") -> Feed:
    """The named feed, from `feeds_dir` (when set and holding it) or the packaged feeds."""
    feed = load_feed_file(feed_path(name, feeds_dir))
    if feed.name != name:
        raise _problem(feed.path, "feed.name", f"{feed.name!r} is not the file's name {name!r}")
    return feed


def feed_path(name: str, feeds_dir: str = "") -> Path:
    """Where the named feed's file is; an operator's folder comes before the packaged one."""
    folders = [Path(feeds_dir)] if feeds_dir else []
    folders.append(PACKAGED_FEEDS)
    for folder in folders:
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({path.stem for folder in folders for path in folder.glob("*.toml")})
    raise ConfigurationError(
        f"no feed {name!r} (looked for {name}.toml in {', '.join(map(str, folders))}); "
        f"known feeds: {', '.join(known)}. Add the feed's file to the feeds_dir folder "
        "(SLUICEWAY_FEEDS_DIR) or pick a known one"
    )


def feed_names(feeds_dir: str = "") -> tuple[str, ...]:
    """Every feed a run can select, packaged or in the operator's folder."""
    folders = [PACKAGED_FEEDS, *([Path(feeds_dir)] if feeds_dir else [])]
    return tuple(sorted({path.stem for folder in folders for path in folder.glob("*.toml")}))


def load_feed_file(path: Path | str) -> Feed:
    """One feed file, checked against the schema and then for consistency."""
    path = Path(path)
    return _load(str(path.resolve()), path.read_bytes())


@cache
def _load(path: str, content: bytes) -> Feed:
    try:
        document = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise _problem(path, "", f"not a valid TOML file ({error})") from error
    _check_schema(path, document)
    return _feed(path, content, document)


@cache
def _validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(schema)


def _check_schema(path: str, document: dict[str, Any]) -> None:
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise _problem(path, _key_path(error.absolute_path), error.message)


def _key_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _problem(path: str, key: str, problem: str) -> ConfigurationError:
    where = f" at {key}" if key else ""
    return ConfigurationError(
        f"feed file {path}{where}: {problem}. Fix the file (docs/feeds.md describes every key)"
    )


def _feed(path: str, content: bytes, document: dict[str, Any]) -> Feed:
    settings = document["feed"]
    columns = tuple(
        Column(
            name=entry["name"],
            table_type=entry["type"].replace(", ", ","),
            required=entry["required"],
            description=entry["description"],
            max_length=entry.get("max_length", DEFAULT_MAX_LENGTH),
            identifier=entry.get("identifier", False),
            sensitive=entry.get("sensitive", False),
        )
        for entry in document["columns"]
    )
    names = [column.name for column in columns]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise _problem(path, f"columns[{index}].name", f"column {name!r} appears twice")
    by_name = {column.name: column for column in columns}
    values = {key: tuple(entries) for key, entries in document.get("values", {}).items()}
    rules = tuple(
        _rule(path, f"rules[{index}]", entry, by_name, values)
        for index, entry in enumerate(document.get("rules", []))
    )
    _check_consistency(path, settings, by_name, rules)
    arrival = document.get("arrival")
    digest = hashlib.sha256(content).hexdigest()[:12]
    return Feed(
        name=settings["name"],
        version=settings["version"],
        description=settings.get("description", ""),
        namespace=settings["namespace"],
        columns=columns,
        rules=rules,
        key=settings["key"],
        event_time=settings["event_time"],
        rule_version=f"{settings['name']}@{settings['version']}:{digest}",
        path=path,
        encoding=settings.get("encoding", "utf-8"),
        delimiter=settings.get("delimiter", ","),
        quote=settings.get("quote", '"'),
        max_record_bytes=settings.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES),
        header_matching=settings.get("header", "by_name"),
        unknown_columns=settings.get("unknown_columns", "fail"),
        max_rejected_share=settings.get("max_rejected_share"),
        amount=settings.get("amount"),
        currency=settings.get("currency"),
        arrival=arrival_from_feed(document, path) if arrival else None,
        values=values,
    )


def _check_consistency(
    path: str, settings: dict[str, Any], by_name: dict[str, Column], rules: tuple[Rule, ...]
) -> None:
    """What the schema cannot say: the columns the feed keys name, and the parse rules."""
    for column in by_name.values():
        parse = [rule for rule in rules if rule.column == column.name and _is_parse(rule)]
        if column.table_type != "string" and not parse:
            wanted = next(kind for kind, t in _PARSE_RULES.items() if _type_of(t, column))
            raise _problem(
                path,
                "rules",
                f"column {column.name!r} of type {column.table_type} needs a "
                f"{{ column = {column.name!r}, rule = {wanted!r}, reason = ... }} rule",
            )
    for key in ("key", "event_time", "amount", "currency"):
        if key in settings and settings[key] not in by_name:
            raise _problem(path, f"feed.{key}", f"no column {settings[key]!r}")
    if "amount" in settings:
        amount = by_name[settings["amount"]]
        if not _type_of("decimal", amount) or decimal_scale(amount)[1] > LEDGER_AMOUNT_SCALE:
            raise _problem(
                path,
                "feed.amount",
                f"column {amount.name!r} is {amount.table_type}; the ledger's totals need a "
                f"decimal with at most {LEDGER_AMOUNT_SCALE} places",
            )
    if by_name[settings["event_time"]].table_type != "timestamp":
        raise _problem(
            path, "feed.event_time", f"column {settings['event_time']!r} is not a timestamp"
        )
    for index, code in enumerate(rule.reason for rule in rules):
        if code in BUILT_IN_REASONS:
            raise _problem(path, f"rules[{index}].reason", f"{code!r} is a built-in reason code")


def _is_parse(rule: Rule) -> bool:
    return rule.kind in _PARSE_RULES


def _type_of(kind: str, column: Column) -> bool:
    """Whether the column's table type is `kind` (decimal for any precision and scale)."""
    return column.table_type.split("(")[0] == kind


def _rule(
    path: str,
    key: str,
    entry: dict[str, Any],
    columns: dict[str, Column],
    values: dict[str, tuple[str, ...]],
) -> Rule:
    name, kind = entry["column"], entry["rule"]
    if name not in columns:
        raise _problem(path, f"{key}.column", f"no column {name!r}")
    column = columns[name]
    if kind in _PARSE_RULES and not _type_of(_PARSE_RULES[kind], column):
        raise _problem(
            path,
            f"{key}.rule",
            f"a {kind} rule needs a {_PARSE_RULES[kind]} column, {name!r} is {column.table_type}",
        )
    rule = Rule(
        column=name,
        kind=kind,
        reason=entry["reason"],
        severity=entry.get("severity", "reject"),
        meaning=entry.get("meaning", ""),
        expected=entry.get("expected", ""),
        pattern=entry.get("pattern", ""),
        minimum=entry.get("min"),
        maximum=entry.get("max"),
    )
    if kind == "pattern":
        _check_pattern(path, f"{key}.pattern", rule.pattern)
        return _replace(rule, expected=rule.expected or f"matching {rule.pattern}")
    if kind == "allowed":
        return _allowed(path, key, entry, rule, values)
    if kind == "range":
        if column.table_type == "string":
            raise _problem(path, f"{key}.rule", f"a range needs a typed column, {name!r} is text")
        for bound in ("min", "max"):
            if bound in entry and not _parses(column, entry[bound]):
                raise _problem(
                    path, f"{key}.{bound}", f"{entry[bound]!r} is not a {column.table_type} value"
                )
    return rule


def _allowed(
    path: str, key: str, entry: dict[str, Any], rule: Rule, values: dict[str, tuple[str, ...]]
) -> Rule:
    if "values" in entry:
        chosen = tuple(entry["values"])
    else:
        source = entry["values_from"]
        if source in values:
            chosen = values[source]
        elif source in BUILT_IN_VALUES:
            built_in, label = BUILT_IN_VALUES[source]
            return _replace(rule, values=tuple(sorted(built_in)), expected=rule.expected or label)
        else:
            known = ", ".join([*values, *BUILT_IN_VALUES])
            raise _problem(path, f"{key}.values_from", f"no value set {source!r}; known: {known}")
    return _replace(rule, values=chosen, expected=rule.expected or ", ".join(chosen))


def _replace(rule: Rule, **changes: Any) -> Rule:
    return dataclasses.replace(rule, **changes)


def _check_pattern(path: str, key: str, pattern: str) -> None:
    """The pattern compiles in RE2, the engine the rules run on."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except pa.ArrowInvalid as error:
        raise _problem(path, key, f"not a valid RE2 pattern ({error})") from error


def _parses(column: Column, text: str) -> bool:
    if column.table_type == "timestamp":
        if not re.fullmatch(TIMESTAMP_PATTERN, text):
            return False
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return False
        return True
    if column.table_type == "bigint":
        return re.fullmatch(r"-?[0-9]{1,18}", text) is not None
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def decimal_scale(column: Column) -> tuple[int, int]:
    """(precision, scale) of a decimal column."""
    found = _DECIMAL_TYPE.fullmatch(column.table_type)
    if not found:
        raise ValueError(f"{column.name} is {column.table_type}, not a decimal")
    return int(found[1]), int(found[2])


def decimal_pattern(column: Column) -> str:
    """A plain decimal that fits the column: optional minus, digits without separators, at
    most `scale` places (no 1,000.00, no 1e3)."""
    precision, scale = decimal_scale(column)
    return rf"^-?[0-9]{{1,{precision - scale}}}(\.[0-9]{{1,{scale}}})?$"


def feed_key_prefix(prefix: str, feed: str | None) -> str:
    """Where `sluiceway upload --feed` puts a feed's files: a folder named after the feed
    under the landing prefix, which `feed_from_key` reads back."""
    if not feed:
        return prefix
    return f"{prefix.rstrip('/')}/{feed}" if prefix.strip("/") else feed


def feed_from_key(key: str, prefix: str = "") -> str:
    """The feed a landing object's key names: the folder right after the landing prefix
    (`landing/payouts/2026-11-25.csv` -> payouts); a file directly under the prefix is the
    transactions feed, as every key was before feeds."""
    rest = key.removeprefix(prefix.strip("/") + "/") if prefix.strip("/") else key
    folder, _, name = rest.partition("/")
    return folder if name else DEFAULT_FEED
