"""The JVM jars a Spark of our own needs: pinned in data/runtime-jars.lock, fetched with Maven.

The local and batch profiles start Spark themselves, so they bring Iceberg's Spark runtime
(and, for an S3 warehouse, Iceberg's AWS bundle) and Spark's Kafka source; Glue and EMR bring
their own. `sluiceway jars`
(run by `make venv` and by the Batch image's build) has `mvn` fetch each pinned jar once into
Maven's local repository, copies it into the interpreter's prefix (`.venv/share/sluiceway/jars`)
and keeps it only if its SHA-256 is the locked one. A jar already there with that digest is
not fetched again, so after the first fetch nothing needs Maven or the network. Maven reaches
the repositories its own settings.xml names (mirrors included); `--repository` adds one.
`installed_jar` is all that spark.py asks of this module; the lock format and mvn itself are
maven_artifacts'.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.maven_artifacts import (
    CHUNK_BYTES,
    PinnedArtifact,
    default_local_repository,
    mvn_get,
    read_lock,
    sha256_of,
)

LOCK = Path(__file__).parent / "data" / "runtime-jars.lock"
ICEBERG_SPARK_RUNTIME = "iceberg-spark-runtime-3.5_2.12"
ICEBERG_AWS_BUNDLE = "iceberg-aws-bundle"
# Spark's Kafka source (`spark.readStream.format("kafka")`) and what it needs beside Spark's
# own jars: its token provider, the Kafka client and the consumer pool, as spark-sql-kafka
# declares them. See KAFKA_CONNECTOR_JARS in spark.py.
SPARK_SQL_KAFKA = "spark-sql-kafka-0-10_2.12"
SPARK_TOKEN_PROVIDER_KAFKA = "spark-token-provider-kafka-0-10_2.12"
KAFKA_CLIENTS = "kafka-clients"
COMMONS_POOL2 = "commons-pool2"
KAFKA_CONNECTOR = (SPARK_SQL_KAFKA, SPARK_TOKEN_PROVIDER_KAFKA, KAFKA_CLIENTS, COMMONS_POOL2)

# One line of the lock: a jar's Maven coordinate and its SHA-256 (maven_artifacts).
PinnedJar = PinnedArtifact


@dataclass(frozen=True)
class Maven:
    """How `mvn` fetches a pinned jar: its local repository and an optional extra remote one.

    `local_repository` is passed to mvn explicitly (default: Maven's own ~/.m2/repository) so
    that the fetched jar's path is known without asking Maven; mirrors, proxies and
    credentials still come from settings.xml.
    """

    repository: str | None = None
    local_repository: Path | None = None
    executable: str = "mvn"

    @property
    def local_root(self) -> Path:
        return self.local_repository or default_local_repository()

    def local_path(self, pin: PinnedJar) -> Path:
        return self.local_root / pin.repository_path

    def resolve(self, pin: PinnedJar) -> Path:
        """Have mvn put the jar into the local repository (if not there already); its path."""
        return mvn_get(
            pin,
            self.local_root,
            rerun="make venv",
            repository=self.repository,
            executable=self.executable,
        )


@dataclass(frozen=True)
class FetchedJar:
    """What `fetch_jars` did for one pin: `present` (digest checked) or `fetched`."""

    pin: PinnedJar
    path: Path
    action: str
    seconds: float


def pinned_jars(lock: Path = LOCK) -> dict[str, PinnedJar]:
    """The lock's pins by artifact id; a malformed line names the lock and the line."""
    return {pin.artifact: pin for pin in read_lock(lock)}


def jar_cache(prefix: str = sys.prefix) -> Path:
    """Where the jars live: beside the interpreter that has pyspark (the venv, or the image)."""
    return Path(prefix) / "share" / "sluiceway" / "jars"


def installed_jar(artifact: str, cache: Path | None = None, lock: Path = LOCK) -> Path:
    """The fetched jar of a pinned artifact; a clear error if `make venv` has not fetched it."""
    pin = pinned_jars(lock)[artifact]
    path = (cache or jar_cache()) / pin.file_name
    if not path.is_file():
        raise ConfigurationError(
            f"{pin.coordinate} is missing: no {path}; run `make venv` (or `sluiceway jars`), "
            "which fetches the jars pinned in lib/sluiceway/data/runtime-jars.lock with Maven "
            "once and checks their SHA-256"
        )
    return path


def fetch_jars(
    cache: Path,
    pins: Iterable[PinnedJar],
    maven: Maven | None = None,
    say: Callable[[str], None] = print,
) -> list[FetchedJar]:
    """Make every pinned jar present in `cache` with its locked digest, fetching it if not.

    A jar whose digest differs (a damaged or replaced file) is fetched again; a fetched jar
    whose digest differs is not kept, neither in `cache` nor in Maven's local repository, and
    fails the fetch.
    """
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(f"cannot create the jar folder {cache}: {error}") from error
    results = []
    for pin in pins:
        started = time.monotonic()
        path = cache / pin.file_name
        if path.is_file():
            found = sha256_of(path)
            if found == pin.sha256:
                results.append(FetchedJar(pin, path, "present", time.monotonic() - started))
                continue
            say(f"{path}: sha256 {found}, locked {pin.sha256}; fetching it again")
        _fetch(pin, path, maven or Maven())
        results.append(FetchedJar(pin, path, "fetched", time.monotonic() - started))
    return results


def _fetch(pin: PinnedJar, path: Path, maven: Maven) -> None:
    local = maven.local_path(pin)
    # mvn never re-checks a jar already in its local repository, so a damaged copy there would
    # come back at every run: drop it and let mvn fetch it once more. A fresh transfer is final.
    again = local.is_file()
    while True:
        found = _copy_if_pinned(maven.resolve(pin), path, pin.sha256)
        if found == pin.sha256:
            return
        local.unlink(missing_ok=True)
        if not again:
            raise ConfigurationError(
                f"the jar mvn fetched for {pin.coordinate} has sha256 {found}, but "
                f"lib/sluiceway/data/runtime-jars.lock pins {pin.coordinate} to {pin.sha256}; "
                "it was not kept (a damaged transfer, a mirror serving another file, or a lock "
                "edited without its digest)"
            )
        again = False


def _copy_if_pinned(source: Path, path: Path, sha256: str) -> str:
    """Copy into a temp file beside `path`; move it there only if its digest is `sha256`."""
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        found = digest.hexdigest()
        if found == sha256:
            os.chmod(partial, 0o644)  # mkstemp's 0600 would hide it from the image's job user
            os.replace(partial, path)
        return found
    finally:
        Path(partial).unlink(missing_ok=True)
