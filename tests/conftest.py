"""Shared fixtures. Fixture modules live in tests/fixtures/ and are listed here once."""

pytest_plugins = [
    "fixtures.spark",
    "fixtures.s3_server",
]
