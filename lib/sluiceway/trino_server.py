"""Trino, Athena's engine, on 127.0.0.1: fetched pinned with Maven, pointed at the Glue catalog
and S3 the jobs write, started and stopped.

Why: analyst SQL is written once in Athena's (Trino) dialect (DESIGN principle 10), and the
local answer (sqlglot -> DuckDB) can only show that the text transpiles; CI runs the text
itself on the engine Athena runs, over the very tables Spark wrote (principle 13,
docs/adr/0010-trino-in-ci.md).

- Fetch: `mvn dependency:get` puts the server core tarball and the Iceberg plugin zip pinned in
  data/trino-server.lock into Maven's local repository; each is unpacked into
  `<prefix>/share/sluiceway/trino/<version>` only if its SHA-256 is the locked one, and a
  complete install is not fetched or unpacked again (`install_trino`, `make trino`).
- Java: Trino 476 needs Java 24+; Spark stays on Java 17. The JDK is found under
  /usr/lib/jvm (or given), and only Trino's process gets it as JAVA_HOME.
- Run: one JVM (coordinator and worker in one, 2 GB heap, small query memory), bound to
  127.0.0.1 on a free port, with one Iceberg catalog `awsdatacatalog` (Athena's name for the
  Glue Data Catalog) over the Glue endpoint and S3 (`running_trino`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import ConfigurationError
from sluiceway.maven_artifacts import (
    PinnedArtifact,
    default_local_repository,
    mvn_get,
    read_lock,
    sha256_of,
)

LOCK = Path(__file__).parent / "data" / "trino-server.lock"
SERVER_ARTIFACT = "trino-server-core"
ICEBERG_ARTIFACT = "trino-iceberg"
MIN_JAVA = 24
JVM_DIRS = (Path("/usr/lib/jvm"),)
# Athena's name for the Glue Data Catalog: `awsdatacatalog.<database>.<table>` reads the same.
CATALOG = "awsdatacatalog"
HEAP = "2G"
STARTUP_SECONDS = 240
STOP_SECONDS = 30
CHUNK_BYTES = 1 << 20
# Written last into an install folder: its absence means an interrupted unpack.
INSTALLED_MARKER = ".sluiceway-installed"


def pinned_artifacts(lock: Path = LOCK) -> dict[str, PinnedArtifact]:
    """The lock's pins by artifact id; a malformed line names the lock and the line."""
    pins = {pin.artifact: pin for pin in read_lock(lock, extension=True)}
    missing = {SERVER_ARTIFACT, ICEBERG_ARTIFACT} - set(pins)
    if missing:
        raise ConfigurationError(f"{lock} pins no {', '.join(sorted(missing))}")
    return pins


def trino_cache(prefix: str = sys.prefix) -> Path:
    """Where Trino is unpacked: beside the interpreter, as the Iceberg jars are."""
    return Path(prefix) / "share" / "sluiceway" / "trino"


@dataclass(frozen=True)
class TrinoInstall:
    """An unpacked Trino: `home` holds lib/ and plugin/ (the core's and `iceberg`)."""

    home: Path
    version: str

    @property
    def classpath(self) -> str:
        return str(self.home / "lib" / "*")

    @property
    def plugin_dir(self) -> Path:
        return self.home / "plugin"


def install_trino(
    cache: Path | None = None,
    lock: Path = LOCK,
    local_repository: Path | None = None,
    say: Callable[[str], None] = print,
) -> TrinoInstall:
    """Make the pinned Trino present under `cache`, fetching and unpacking it only if missing.

    A complete install (its marker names the locked digests) is returned at once. Otherwise
    each pinned file is fetched with mvn (a file already in Maven's local repository is not
    downloaded again), its SHA-256 checked, and both are unpacked into a temporary folder that
    becomes the install only when complete; a file whose digest differs is removed from
    Maven's local repository and fails the install.
    """
    pins = pinned_artifacts(lock)
    server = pins[SERVER_ARTIFACT]
    root = cache or trino_cache()
    install = TrinoInstall(root / server.version, server.version)
    marker = install.home / INSTALLED_MARKER
    expected = _marker_text(pins.values())
    if marker.is_file() and marker.read_text(encoding="utf-8") == expected:
        return install
    repository = local_repository or default_local_repository()
    files = {name: _fetched(pin, repository, say) for name, pin in pins.items()}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{server.version}."))
    try:
        say(f"unpacking Trino {server.version} into {install.home}")
        _unpack_tar(files[SERVER_ARTIFACT], staging)
        _unpack_zip(files[ICEBERG_ARTIFACT], staging / "plugin" / "iceberg")
        (staging / INSTALLED_MARKER).write_text(expected, encoding="utf-8")
        shutil.rmtree(install.home, ignore_errors=True)
        staging.rename(install.home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return install


def _marker_text(pins: Iterable[PinnedArtifact]) -> str:
    return "".join(f"{pin.coordinate} {pin.sha256}\n" for pin in pins)


def _fetched(pin: PinnedArtifact, repository: Path, say: Callable[[str], None]) -> Path:
    """The pinned file in Maven's local repository, fetched with mvn if absent or damaged."""
    path = repository / pin.repository_path
    if path.is_file() and sha256_of(path) == pin.sha256:
        return path
    path.unlink(missing_ok=True)  # mvn never re-checks a file already in its local repository
    say(f"fetching {pin.coordinate} with Maven")
    started = time.monotonic()
    _mvn_get(pin, repository)
    found = sha256_of(path) if path.is_file() else "nothing"
    if found != pin.sha256:
        path.unlink(missing_ok=True)
        raise ConfigurationError(
            f"mvn fetched {pin.coordinate} with sha256 {found}, but {LOCK.name} pins "
            f"{pin.sha256}; it was not kept (a damaged transfer, a mirror serving another file, "
            "or a lock edited without its digest)"
        )
    say(f"fetched {pin.coordinate} ({path.stat().st_size / 1e6:.0f} MB) in "
        f"{time.monotonic() - started:.0f} s")  # fmt: skip
    return path


def _mvn_get(pin: PinnedArtifact, repository: Path) -> None:
    mvn_get(pin, repository, rerun="make trino")


def _inside(target: Path, name: str) -> Path:
    """`name` (an archive member without its top folder) below `target`, never outside it."""
    path = (target / name).resolve()
    if not path.is_relative_to(target.resolve()):
        raise ConfigurationError(f"archive member {name!r} points outside {target}")
    return path


def _unpack_tar(archive: Path, target: Path) -> None:
    """Unpack without the archive's top folder (`trino-server-core-476/`), keeping modes.

    The plugins' copies of shared jars are hard links to lib/ in the tarball: linked again.
    """
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            _, _, name = member.name.partition("/")
            if not name or not (member.isfile() or member.isdir() or member.islnk()):
                continue
            path = _inside(target, name)
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if member.islnk():
                os.link(_inside(target, member.linkname.partition("/")[2]), path)
                continue
            source = tar.extractfile(member)
            assert source is not None
            with source, path.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
            path.chmod(member.mode & 0o755 | 0o644)


def _unpack_zip(archive: Path, target: Path) -> None:
    """Unpack a plugin zip without its top folder (`trino-iceberg-476/`)."""
    with zipfile.ZipFile(archive) as plugin:
        for member in plugin.infolist():
            _, _, name = member.filename.partition("/")
            if not name or member.is_dir():
                continue
            path = _inside(target, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with plugin.open(member) as source, path.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)


# --- Java ------------------------------------------------------------------------------------


def java_major(java_home: Path) -> int:
    """The major version a JDK's `release` file states (0 if it states none)."""
    release = java_home / "release"
    text = release.read_text(encoding="utf-8", errors="replace") if release.is_file() else ""
    match = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def find_java_home(given: Path | None = None, search: Sequence[Path] = JVM_DIRS) -> Path:
    """The JDK Trino runs on: `given`, or the newest Java 24+ under /usr/lib/jvm.

    Spark keeps the machine's Java 17; only Trino's process gets this one as JAVA_HOME.
    """
    if given is not None:
        if java_major(given) < MIN_JAVA or not (given / "bin" / "java").is_file():
            raise ConfigurationError(
                f"{given} is no Java {MIN_JAVA}+ (its release file says "
                f"{java_major(given) or 'nothing'}); Trino needs Java {MIN_JAVA} or newer"
            )
        return given
    found = [
        home
        for folder in search
        if folder.is_dir()
        for home in sorted(folder.iterdir())
        if (home / "bin" / "java").is_file() and java_major(home) >= MIN_JAVA
    ]
    if not found:
        raise ConfigurationError(
            f"no Java {MIN_JAVA}+ under {', '.join(map(str, search))}: Trino needs one (Spark "
            "keeps Java 17); install e.g. Temurin 25 (/usr/lib/jvm/temurin-25-jdk-amd64) or "
            "pass its folder (SLUICEWAY_TRINO_JAVA_HOME for the tests, --java-home here)"
        )
    return max(found, key=java_major)


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GlueAndS3:
    """The Glue Data Catalog and S3 endpoints Trino reads the tables through, as Spark does."""

    glue_url: str
    s3_url: str
    region: str
    access_key: str
    secret_key: str


def iceberg_catalog(endpoints: GlueAndS3) -> dict[str, str]:
    """Trino's Iceberg connector on a Glue catalog and S3, with only the endpoints changed."""
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "glue",
        "hive.metastore.glue.region": endpoints.region,
        "hive.metastore.glue.endpoint-url": endpoints.glue_url,
        "hive.metastore.glue.aws-access-key": endpoints.access_key,
        "hive.metastore.glue.aws-secret-key": endpoints.secret_key,
        "fs.native-s3.enabled": "true",
        "s3.endpoint": endpoints.s3_url,
        "s3.region": endpoints.region,
        "s3.path-style-access": "true",
        "s3.aws-access-key": endpoints.access_key,
        "s3.aws-secret-key": endpoints.secret_key,
    }


def server_config(install: TrinoInstall, port: int, catalog_dir: Path) -> dict[str, str]:
    """One node that is coordinator and worker, on 127.0.0.1 only, with small query memory:
    the 2-core machine runs Spark beside it."""
    return {
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "node.environment": "sluiceway",
        "node.bind-ip": "127.0.0.1",
        "node.internal-address": "127.0.0.1",
        "http-server.http.port": str(port),
        "discovery.uri": f"http://127.0.0.1:{port}",
        "http-server.log.enabled": "false",
        "plugin.dir": str(install.plugin_dir),
        "catalog.config-dir": str(catalog_dir),
        "query.max-memory": "1GB",
        "query.max-memory-per-node": "512MB",
        "memory.heap-headroom-per-node": "512MB",
    }


def jvm_options(heap: str = HEAP) -> list[str]:
    """Trino's recommended JVM flags, with a small heap."""
    return [
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:ReservedCodeCacheSize=256M",
        "-XX:+EnableDynamicAgentLoading",
        "--enable-native-access=ALL-UNNAMED",
        "-Djdk.attach.allowAttachSelf=true",
        "-Dfile.encoding=UTF-8",
    ]


def _properties(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


# --- running -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrinoServer:
    """A running Trino: where it answers, its catalog, and its folder (server.log)."""

    url: str
    catalog: str
    data_dir: Path
    startup_seconds: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_trino(
    install: TrinoInstall,
    endpoints: GlueAndS3,
    data_dir: Path,
    java_home: Path | None = None,
    port: int = 0,
    heap: str = HEAP,
) -> Iterator[TrinoServer]:
    """Start Trino on 127.0.0.1 with the `awsdatacatalog` catalog, wait until it takes
    queries, and stop it on the way out (SIGTERM, then SIGKILL after STOP_SECONDS)."""
    java = find_java_home(java_home)
    port = port or free_port()
    etc = data_dir / "etc"
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    (etc / "config.properties").write_text(
        _properties(server_config(install, port, etc / "catalog")), encoding="utf-8"
    )
    (etc / "catalog" / f"{CATALOG}.properties").write_text(
        _properties(iceberg_catalog(endpoints)), encoding="utf-8"
    )
    command = [
        str(java / "bin" / "java"),
        *jvm_options(heap),
        f"-Dconfig={etc / 'config.properties'}",
        "-cp",
        install.classpath,
        "io.trino.server.TrinoServer",
    ]
    # Only what the JVM needs: no AWS_* variable may point Trino anywhere but the catalog file.
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "JAVA_HOME": str(java)}
    log = data_dir / "server.log"
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=data_dir, env=environ, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_started(url, process, log)
        yield TrinoServer(url, CATALOG, data_dir, time.monotonic() - started)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_started(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(
                f"Trino exited with {process.returncode} while starting; see {log}"
                f"{_first_error(log)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/v1/info", timeout=2) as response:
                if json.load(response).get("starting") is False:
                    return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.25)
    raise ConfigurationError(f"Trino did not start within {STARTUP_SECONDS} s; see {log}")


def _first_error(log: Path) -> str:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "ERROR" in line or line.startswith(("1) ", "Error")):
            return f": {line.strip()[:300]}"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """`make trino`: fetch and unpack the pinned Trino (once), print where it is."""
    parser = argparse.ArgumentParser(
        prog="python -m sluiceway.trino_server",
        description="Fetch the Trino pinned in lib/sluiceway/data/trino-server.lock with Maven "
        "(once), check its SHA-256 and unpack it into .venv/share/sluiceway/trino.",
    )
    parser.add_argument("--java-home", type=Path, help="the Java 24+ Trino runs on")
    args = parser.parse_args(argv)
    try:
        started = time.monotonic()
        install = install_trino()
        java = find_java_home(args.java_home)
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"Trino {install.version} in {install.home} ({time.monotonic() - started:.1f} s), "
        f"Java {java_major(java)} in {java}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
