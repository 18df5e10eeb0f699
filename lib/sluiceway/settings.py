"""Configuration profiles: defaults <- profile <- environment <- job arguments, built once.

The result is a frozen `Settings` passed explicitly; nothing in the library reads
`os.environ` or `sys.argv` on its own.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluiceway import local_stack
from sluiceway.contract import MAX_RECORD_BYTES
from sluiceway.errors import ConfigurationError
from sluiceway.feeds import DEFAULT_FEED, Feed, load_feed
from sluiceway.ingest.header import MATCHINGS, UNKNOWN_COLUMN_POLICIES
from sluiceway.locations import is_s3

PROFILES = ("local", "glue", "emr-serverless", "batch", "local-aws")
ENV_PREFIX = "SLUICEWAY_"

# What one worker of each compute costs an hour (USD, us-east-1, on-demand, checked 2026);
# the report's cost of a run is its seconds x its workers x this price. A worker is what the
# run counts as one (`job_runs.spark_workers`: a Spark driver or executor, or the machine in
# local mode). Override with the setting worker_hour_usd (`glue=0.88,batch=0.2`).
WORKER_HOUR_USD: Mapping[str, float] = {
    # https://aws.amazon.com/glue/pricing/ : $0.44 per DPU-hour; a G.1X worker is 1 DPU (the
    # template's GlueWorkerType default; 0.88 for G.2X).
    "glue": 0.44,
    # https://aws.amazon.com/emr/pricing/ (EMR Serverless): $0.052624 per vCPU-hour and
    # $0.0057785 per GB-hour; a driver or executor is 4 vCPU and 16 GB by default.
    "emr-serverless": round(4 * 0.052624 + 16 * 0.0057785, 6),
    # https://aws.amazon.com/fargate/pricing/ : $0.04048 per vCPU-hour and $0.004445 per
    # GB-hour; the Batch fallback is one Fargate task of 4 vCPU and 16 GB (BatchVcpu,
    # BatchMemoryMiB), Spark in local mode, so one worker.
    "batch": round(4 * 0.04048 + 16 * 0.004445, 6),
    # Your own machine (and the local AWS stack) cost nothing here.
    "local": 0.0,
    "local-aws": 0.0,
}


@dataclass(frozen=True)
class Settings:
    """Everything that changes between the places sluiceway runs; never the logic."""

    profile: str = "local"
    warehouse: str = "./warehouse"
    catalog: str = "lake"
    namespace: str = "sluiceway"
    spark_master: str = "local[*]"
    # The local JVM's heap. A 30M-record day measured: ingest's JVM peaks at 0.6 GB whatever
    # the limit; processing's sorts spill beyond it, at 2g in about the time of 6g (226 vs
    # 214 s) with the whole step's peak at 4.5 GB instead of 6.2 GB (docs/processing.md).
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    duplicate_lookback_days: int = 7
    parse_chunk_mb: int = 16
    # The longest record before an opened quote counts as unclosed (contract.MAX_RECORD_BYTES).
    max_record_bytes: int = MAX_RECORD_BYTES
    staging_dir: str = ""
    # Overrides of the feed's header rules (ingest/header.py; "" = the feed file's): columns
    # matched `by_name` or `strict`, and what becomes of a column the contract does not
    # know: fail | ignore | rescue.
    header_matching: str = ""
    unknown_columns: str = ""
    log_level: str = "INFO"
    # JSON lines for machines (Glue, EMR, Batch, CI); `sluiceway` on a terminal picks text.
    log_format: str = "json"
    # With a log file it takes every log line and Spark's own log; stderr keeps what needs
    # attention (sluiceway.logs).
    log_file: str = ""
    athena_workgroup: str = "sluiceway"
    aws_region: str | None = None
    failpoint: str = ""
    # The writer lease (lib/sluiceway/lease/): the DynamoDB table of s3:// warehouses, how
    # long a second writer waits before exiting busy, and how long a dead holder's lease lasts.
    lease_table: str = ""
    lease_wait_seconds: int = 0
    lease_expiry_seconds: int = 300
    extra_spark_conf: Mapping[str, str] = field(default_factory=dict)
    # Prices per worker-hour by compute (profile) that replace WORKER_HOUR_USD's, in USD.
    worker_hour_usd: Mapping[str, str | float] = field(default_factory=dict)

    def worker_hour_prices(self) -> dict[str, float]:
        """WORKER_HOUR_USD with this configuration's prices in place of the defaults."""
        prices = dict(WORKER_HOUR_USD)
        for compute, price in self.worker_hour_usd.items():
            try:
                prices[compute] = float(price)
            except ValueError as error:
                raise ConfigurationError(
                    f"setting worker_hour_usd: the price of {compute!r} must be a number of "
                    f"USD per worker-hour, got {price!r} (e.g. glue=0.44,batch=0.2331)"
                ) from error
        return prices

    # The partner feed a run handles (docs/feeds.md), and an operator's folder of feed files
    # beside the packaged ones. The transactions feed's tables are in `namespace`; any other
    # feed's in the namespace its file names (`with_overrides` sets it).
    feed: str = DEFAULT_FEED
    feeds_dir: str = ""

    def feed_contract(self) -> Feed:
        """The selected feed's contract, loaded (and checked) from its file."""
        return load_feed(self.feed, self.feeds_dir)

    def header_reading(self) -> tuple[str, str]:
        """How a header is matched and its unknown columns treated: the feed's, unless set."""
        feed = self.feed_contract()
        return (
            self.header_matching or feed.header_matching,
            self.unknown_columns or feed.unknown_columns,
        )

    def table(self, name: str) -> str:
        """Fully qualified Spark identifier of a sluiceway table."""
        return f"{self.catalog}.{self.namespace}.{name}"

    def staging_location(self) -> str:
        """Where a .gz landing file is unpacked for the executors to read.

        On a cluster every executor must reach it, so the AWS profiles stage under the
        warehouse (the storage stack expires `_staging/` objects); locally the temp dir serves.
        """
        if self.staging_dir:
            return self.staging_dir
        if self.profile != "local" and is_s3(self.warehouse):
            return f"{self.warehouse.rstrip('/')}/_staging"
        return f"{tempfile.gettempdir()}/sluiceway-staging"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with the given non-None fields replaced, values coerced to the field types."""
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise ConfigurationError(f"unknown setting {key!r}; known: {', '.join(known)}")
            changes[key] = _coerce(key, value, getattr(self, key))
        result = dataclasses.replace(self, **changes)
        if result.profile not in PROFILES:
            raise ConfigurationError(
                f"unknown profile {result.profile!r}; choose one of {', '.join(PROFILES)}"
            )
        _check_choice("header_matching", result.header_matching, (*MATCHINGS, ""))
        _check_choice("unknown_columns", result.unknown_columns, (*UNKNOWN_COLUMN_POLICIES, ""))
        if result.feed != DEFAULT_FEED:
            result = dataclasses.replace(result, namespace=result.feed_contract().namespace)
        return result


# What each profile changes relative to the defaults. The catalog type follows the profile
# (see lib/sluiceway/spark.py); these are the values a user would otherwise have to repeat.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "local": {},
    "glue": {"spark_master": "", "shuffle_partitions": 64},
    "emr-serverless": {"spark_master": "", "shuffle_partitions": 64},
    "batch": {"spark_master": "local[*]", "shuffle_partitions": 16},
    # The glue profile's catalog, storage and lease on the local AWS stack (`make stack`,
    # lib/sluiceway/local_stack.py), in a Spark of our own: the stack's names as defaults;
    # the endpoints and dummy credentials come in the standard AWS_* variables, as on AWS.
    "local-aws": {
        "spark_master": "local[*]",
        "warehouse": f"s3://{local_stack.WAREHOUSE_BUCKET}/warehouse",
        "namespace": local_stack.GLUE_DATABASE,
        "lease_table": local_stack.LEASE_TABLE,
        "aws_region": local_stack.REGION,
    },
}


def load_settings(
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings with precedence defaults < profile < environment < arguments."""
    environ = environ or {}
    from_env = {
        f.name: environ[ENV_PREFIX + f.name.upper()]
        for f in dataclasses.fields(Settings)
        if ENV_PREFIX + f.name.upper() in environ
    }
    arguments = dict(arguments or {})
    chosen = arguments.get("profile") or from_env.get("profile") or profile or "local"
    if chosen not in PROFILE_DEFAULTS:
        raise ConfigurationError(f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)}")
    return (
        Settings()
        .with_overrides({"profile": chosen, **PROFILE_DEFAULTS[chosen]})
        .with_overrides(from_env)
        .with_overrides(arguments)
    )


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"setting {name} is {value!r}; choose one of {', '.join(choices)}")


def _coerce(name: str, value: Any, current: Any) -> Any:
    if isinstance(current, bool):
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(current, int):
        try:
            return int(value)
        except ValueError as error:
            raise ConfigurationError(
                f"setting {name} must be a whole number, got {value!r}"
            ) from error
    if isinstance(current, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        pairs = [item.split("=", 1) for item in str(value).split(",") if item]
        return {key.strip(): val.strip() for key, val in pairs}
    return value if value is None or isinstance(value, str) else str(value)
