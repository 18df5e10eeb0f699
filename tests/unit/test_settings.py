"""Configuration precedence: defaults < profile < environment < arguments."""

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.settings import load_settings

pytestmark = pytest.mark.unit


def test_defaults_are_the_embedded_local_profile():
    settings = load_settings()
    assert (settings.profile, settings.warehouse, settings.namespace) == (
        "local",
        "./warehouse",
        "sluiceway",
    )
    assert settings.table("transactions") == "lake.sluiceway.transactions"


def test_profile_changes_defaults():
    assert load_settings(profile="glue").shuffle_partitions == 64


def test_environment_overrides_profile_and_arguments_override_environment():
    environ = {"SLUICEWAY_WAREHOUSE": "/env/wh", "SLUICEWAY_SHUFFLE_PARTITIONS": "3"}
    from_env = load_settings(profile="glue", environ=environ)
    assert (from_env.warehouse, from_env.shuffle_partitions) == ("/env/wh", 3)
    from_args = load_settings(environ=environ, arguments={"warehouse": "/arg/wh"})
    assert from_args.warehouse == "/arg/wh"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unknown profile 'lamda'"):
        load_settings(arguments={"profile": "lamda"})


def test_non_numeric_number_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="shuffle_partitions must be a whole number"):
        load_settings(environ={"SLUICEWAY_SHUFFLE_PARTITIONS": "many"})


def test_glue_style_lease_table_argument_reaches_the_settings():
    """Glue cannot set environment variables: the stack passes --lease-table as an argument."""
    from sluiceway.job_arguments import IngestArgs

    args = IngestArgs.parse(
        ["--source", "s3://b/k.csv", "--lease-table", "sluiceway-dev-leases", "--JOB_NAME", "x"],
        {"SLUICEWAY_LEASE_TABLE": "from-environment"},
    )
    assert args.settings.lease_table == "sluiceway-dev-leases"


def test_header_settings_default_to_the_feed_s_by_name_and_fail_and_are_checked():
    settings = load_settings()
    assert (settings.header_matching, settings.unknown_columns) == ("", "")
    assert settings.header_reading() == ("by_name", "fail")  # transactions.toml's
    chosen = load_settings(environ={"SLUICEWAY_UNKNOWN_COLUMNS": "rescue"})
    assert chosen.unknown_columns == "rescue"
    assert chosen.header_reading() == ("by_name", "rescue")
    with pytest.raises(ConfigurationError, match="setting unknown_columns is 'keep'; choose one"):
        load_settings(arguments={"unknown_columns": "keep"})
    with pytest.raises(ConfigurationError, match="setting header_matching is 'loose'"):
        load_settings(environ={"SLUICEWAY_HEADER_MATCHING": "loose"})
