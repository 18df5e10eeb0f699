"""Shared fixtures. Fixture modules live in tests/fixtures/ and are listed here once."""

pytest_plugins = [
    "fixtures.spark",
    "fixtures.landing",
    "fixtures.http_server",
    "fixtures.processing_records",
    "fixtures.s3_server",
    "fixtures.spark_cluster",
    "fixtures.analytics",
    "fixtures.aws_stack",
    "fixtures.trino_server",
    "fixtures.kafka_broker",
]
