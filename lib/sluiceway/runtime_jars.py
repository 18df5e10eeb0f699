"""The JVM jars a Spark of our own needs: pinned in data/runtime-jars.lock, from Maven Central.

The local and batch profiles start Spark themselves, so they bring Iceberg's Spark runtime
(and, for an S3 warehouse, Iceberg's AWS bundle); Glue and EMR bring their own. `sluiceway jars`
(run by `make venv` and by the Batch image's build) downloads each pinned jar once into the
interpreter's prefix (`.venv/share/sluiceway/jars`) and keeps it only if its SHA-256 is the
locked one; a jar already there with that digest is not downloaded again, so after the first
fetch nothing needs the network. `installed_jar` is all that spark.py asks of this module.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import ConfigurationError

LOCK = Path(__file__).parent / "data" / "runtime-jars.lock"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
ICEBERG_SPARK_RUNTIME = "iceberg-spark-runtime-3.5_2.12"
ICEBERG_AWS_BUNDLE = "iceberg-aws-bundle"
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class PinnedJar:
    """One line of the lock: a Maven coordinate and the SHA-256 its jar must have."""

    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str = MAVEN_CENTRAL) -> str:
        """Where a Maven repository keeps the jar (the standard layout, as mvn reads it)."""
        group = self.group.replace(".", "/")
        return f"{repository.rstrip('/')}/{group}/{self.artifact}/{self.version}/{self.file_name}"


@dataclass(frozen=True)
class FetchedJar:
    """What `fetch_jars` did for one pin: `present` (digest checked) or `fetched`."""

    pin: PinnedJar
    path: Path
    action: str
    seconds: float


def pinned_jars(lock: Path = LOCK) -> dict[str, PinnedJar]:
    """The lock's pins by artifact id; a malformed line names the lock and the line."""
    pins: dict[str, PinnedJar] = {}
    for number, line in enumerate(lock.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        parts = fields[0].split(":")
        if len(fields) != 2 or len(parts) != 3 or len(fields[1]) != 64:
            raise ConfigurationError(
                f"{lock}:{number}: expected 'group:artifact:version sha256', got {line.strip()!r}"
            )
        group, artifact, version = parts
        pin = PinnedJar(group, artifact, version, sha256=fields[1].lower())
        pins[pin.artifact] = pin
    return pins


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
            "which fetches the jars pinned in lib/sluiceway/data/runtime-jars.lock from Maven "
            "Central once and checks their SHA-256"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_jars(
    cache: Path,
    pins: Iterable[PinnedJar],
    repository: str = MAVEN_CENTRAL,
    say: Callable[[str], None] = print,
) -> list[FetchedJar]:
    """Make every pinned jar present in `cache` with its locked digest, downloading if not.

    A jar whose digest differs (a damaged or replaced file) is downloaded again; a download
    whose digest differs is thrown away and fails the fetch, and nothing half-written is left
    under the jar's name.
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
            say(f"{path}: sha256 {found}, locked {pin.sha256}; downloading it again")
        _download(pin, path, repository)
        results.append(FetchedJar(pin, path, "fetched", time.monotonic() - started))
    return results


def _download(pin: PinnedJar, path: Path, repository: str) -> None:
    url = pin.url(repository)
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            found = _download_once(url, path, pin.sha256)
            break
        except (OSError, http.client.HTTPException) as error:
            # A missing file (404) stays missing; a dropped connection or a 5xx may not.
            permanent = isinstance(error, urllib.error.HTTPError) and error.code < 500
            if permanent or attempt == DOWNLOAD_ATTEMPTS:
                raise ConfigurationError(
                    f"could not download {pin.coordinate} from {url} ({error}; attempt "
                    f"{attempt} of {DOWNLOAD_ATTEMPTS}); check the network, or pass "
                    "--repository with a Maven mirror"
                ) from error
            time.sleep(attempt)
    if found != pin.sha256:
        raise ConfigurationError(
            f"{url} has sha256 {found}, but lib/sluiceway/data/runtime-jars.lock pins "
            f"{pin.coordinate} to {pin.sha256}; the download was not kept (a damaged transfer, "
            "a mirror serving another file, or a lock edited without its digest)"
        )


def _download_once(url: str, path: Path, sha256: str) -> str:
    """Download into a temp file beside `path`; move it there only if its digest is `sha256`."""
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        ):
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        found = digest.hexdigest()
        if found == sha256:
            os.chmod(partial, 0o644)  # mkstemp's 0600 would hide it from the image's job user
            os.replace(partial, path)
        return found
    finally:
        Path(partial).unlink(missing_ok=True)
