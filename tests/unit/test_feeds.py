"""Feed files: loaded, checked against the schema with errors that name the file, the key and
the problem, stamped with a rule_version, and found in the operator's folder."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.arrival import arrival_from_feed
from sluiceway.errors import ConfigurationError
from sluiceway.feeds import PACKAGED_FEEDS, feed_names, load_feed, load_feed_file

pytestmark = pytest.mark.unit

FIXTURE_FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
TRANSACTIONS_FILE = PACKAGED_FEEDS / "transactions.toml"


def broken_copy(tmp_path: Path, old: str, new: str, name: str = "transactions") -> Path:
    text = TRANSACTIONS_FILE.read_text()
    assert old in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_transactions_feed_is_the_contract_the_code_reads() -> None:
    feed = load_feed("transactions")
    assert feed.column_names == c.COLUMN_NAMES
    assert feed.namespace == "sluiceway"
    assert feed.key == "transaction_id" and feed.event_time == "event_time"
    assert (feed.amount, feed.currency) == ("amount", "currency")
    assert feed.arrival is not None and feed.arrival.describe() == "every day by 06:00 UTC"
    assert feed.header_matching == "by_name" and feed.unknown_columns == "fail"
    assert feed.max_rejected_share == 0.05
    assert [column.name for column in feed.columns if column.sensitive] == [
        "account_id",
        "counterparty_id",
    ]
    assert feed.fail_file_reasons == frozenset() and feed.warn_reasons == frozenset()


def test_rule_version_is_the_version_and_a_hash_of_the_file_bytes(tmp_path: Path) -> None:
    feed = load_feed("transactions")
    assert re.fullmatch(r"transactions@1:[0-9a-f]{12}", feed.rule_version)
    changed = broken_copy(tmp_path, 'reason = "bad_mcc"', 'reason = "bad_mcc"  # same rule')
    other = load_feed_file(changed)
    assert other.rule_version.startswith("transactions@1:")
    assert other.rule_version != feed.rule_version


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('type = "decimal(18,2)"', 'type = "money"', "columns[3].type", "does not match"),
        ("required = true", 'required = "yes"', "columns[0].required", "is not of type 'boolean'"),
        ('namespace = "sluiceway"', "", "feed", "'namespace' is a required property"),
        ('rule = "decimal"', 'rule = "decimals"', "rules[0].rule", "is not one of"),
        ('reason = "bad_mcc"', 'reason = "bad_mcc"\nseverity = "loud"', "rules[8].severity", ""),
        ("max_length = 4096", "max_length = 4096\nmaxlength = 1", "columns[10]", "maxlength"),
    ],
)
def test_a_schema_error_names_the_file_the_key_and_the_problem(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    path = broken_copy(tmp_path, old, new)
    with pytest.raises(ConfigurationError) as raised:
        load_feed_file(path)
    message = str(raised.value)
    assert str(path) in message
    assert f" at {key}:" in message
    assert problem in message
    assert "docs/feeds.md" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        (
            'column = "mcc"',
            'column = "merchant_code"',
            "rules[8].column",
            "no column 'merchant_code'",
        ),
        (
            'values_from = "statuses"',
            'values_from = "states"',
            "rules[4].values_from",
            "no value set",
        ),
        (
            "pattern = '^[0-9]{4}$'",
            "pattern = '^([0-9]{4}$'",
            "rules[8].pattern",
            "not a valid RE2",
        ),
        ('min = "1900-01-01T00:00:00Z"', 'min = "1900-01-01"', "rules[7].min", "not a timestamp"),
        ('reason = "bad_mcc"', 'reason = "missing_required"', "rules[8].reason", "built-in"),
        ('type = "decimal(18,2)"', 'type = "decimal(18,3)"', "feed.amount", "at most 2 places"),
        (
            'event_time = "event_time"',
            'event_time = "status"',
            "feed.event_time",
            "not a timestamp",
        ),
    ],
)
def test_a_rule_the_schema_cannot_check_is_refused_as_clearly(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    path = broken_copy(tmp_path, old, new)
    with pytest.raises(ConfigurationError, match=re.escape(problem)) as raised:
        load_feed_file(path)
    assert f"{path} at {key}:" in str(raised.value)


def test_a_typed_column_without_its_parse_rule_is_refused(tmp_path: Path) -> None:
    text = TRANSACTIONS_FILE.read_text()
    start = text.index('[[rules]]\ncolumn = "amount"\nrule = "decimal"')
    end = text.index("[[rules]]", start + 1)
    path = tmp_path / "transactions.toml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(ConfigurationError, match=r"'amount' of type decimal.18,2. needs a"):
        load_feed_file(path)


def test_a_file_that_is_not_toml_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "transactions.toml"
    path.write_text("[feed\nname = 1\n")
    with pytest.raises(ConfigurationError, match=f"{re.escape(str(path))}: not a valid TOML"):
        load_feed_file(path)


def test_an_operator_adds_a_feed_in_the_feeds_folder() -> None:
    with pytest.raises(ConfigurationError, match=r"no feed 'payouts'.*known feeds: transactions"):
        load_feed("payouts")
    payouts = load_feed("payouts", str(FIXTURE_FEEDS))
    assert payouts.namespace == "payouts"
    assert payouts.column_names[:2] == ("payout_id", "merchant")
    assert payouts.warn_reasons == frozenset({"many_items"})
    assert payouts.fail_file_reasons == frozenset({"unknown_method"})
    assert payouts.rule_version.startswith("payouts@3:")
    assert feed_names(str(FIXTURE_FEEDS)) == ("payouts", "transactions")


def test_a_feed_file_whose_name_differs_from_its_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(TRANSACTIONS_FILE.read_text())
    with pytest.raises(ConfigurationError, match=r"at feed\.name: 'transactions' is not the file"):
        load_feed("other", str(tmp_path))


def test_the_arrival_table_is_the_late_file_check_s(tmp_path: Path) -> None:
    """One reading of `[arrival]`: the loader hands the status and the Lambda's rule over."""
    text = (PACKAGED_FEEDS / "transactions.toml").read_text()
    text = text.replace('every = "day"', 'every = ["mon", "fri"]\ngrace_minutes = 30')
    (tmp_path / "transactions.toml").write_text(text)
    feed = load_feed("transactions", str(tmp_path))
    assert feed.arrival == arrival_from_feed(tomllib.loads(text), "transactions.toml")
    assert feed.arrival.describe() == "every mon, fri by 06:00 UTC (+30 min grace)"


def test_a_delimiter_the_tokenizer_cannot_read_is_refused_on_load(tmp_path: Path) -> None:
    """The tokenizer splits on commas only: a `;` feed would be read wrongly, so it never loads."""
    text = (PACKAGED_FEEDS / "transactions.toml").read_text()
    (tmp_path / "transactions.toml").write_text(text.replace('delimiter = ","', 'delimiter = ";"'))
    with pytest.raises(ConfigurationError, match="delimiter"):
        load_feed("transactions", str(tmp_path))
