"""The pinned JVM jars: fetched once with Maven, checked against the lock, not kept if they differ.

`FolderMaven` stands in for mvn where only what fetch_jars does with its answer matters: it
copies from a folder laid out as a Maven repository into the local repository and, like mvn,
never fetches a jar its local repository already has. One integration test runs the real
mvn against a `file://` repository in tmp_path with a local repository of its own (its first
run fetches maven-dependency-plugin through mvn's configured repositories).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.runtime_jars import (
    ICEBERG_AWS_BUNDLE,
    ICEBERG_SPARK_RUNTIME,
    KAFKA_CONNECTOR,
    SPARK_SQL_KAFKA,
    Maven,
    PinnedJar,
    fetch_jars,
    installed_jar,
    pinned_jars,
)

JAR_BYTES = b"PK\x03\x04 a jar, as far as this test is concerned"


@dataclass(frozen=True)
class FolderMaven(Maven):
    """mvn as fetch_jars sees it: the local repository's copy if there is one, else the remote's."""

    calls: list[str] = field(default_factory=list)

    def resolve(self, pin: PinnedJar) -> Path:
        self.calls.append(pin.coordinate)
        local = self.local_path(pin)
        if not local.is_file():
            assert self.repository is not None
            remote = Path(self.repository.removeprefix("file://")) / pin.repository_path
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(remote, local)
        return local


def publish(repository: Path, pin: PinnedJar, content: bytes) -> None:
    """Put a jar, its POM and their .sha1 files where a Maven repository keeps them."""
    jar = repository / pin.repository_path
    jar.parent.mkdir(parents=True, exist_ok=True)
    pom = jar.with_suffix(".pom")
    pom.write_text(
        "<project><modelVersion>4.0.0</modelVersion>"
        f"<groupId>{pin.group}</groupId><artifactId>{pin.artifact}</artifactId>"
        f"<version>{pin.version}</version></project>"
    )
    jar.write_bytes(content)
    for path in (jar, pom):
        Path(f"{path}.sha1").write_text(hashlib.sha1(path.read_bytes()).hexdigest())


@pytest.fixture
def pin() -> PinnedJar:
    digest = hashlib.sha256(JAR_BYTES).hexdigest()
    return PinnedJar("org.example", "example-runtime", "1.2.3", digest)


@pytest.fixture
def maven(tmp_path: Path) -> FolderMaven:
    return FolderMaven((tmp_path / "repository").as_uri(), tmp_path / "m2")


@pytest.mark.unit
def test_the_lock_pins_the_iceberg_release_that_glue_5_1_ships() -> None:
    pins = pinned_jars()
    assert set(pins) == {ICEBERG_SPARK_RUNTIME, ICEBERG_AWS_BUNDLE, *KAFKA_CONNECTOR}
    for artifact in (ICEBERG_SPARK_RUNTIME, ICEBERG_AWS_BUNDLE):
        assert (pins[artifact].group, pins[artifact].version) == ("org.apache.iceberg", "1.10.0")
    assert all(len(pin.sha256) == 64 for pin in pins.values())
    assert pins[ICEBERG_SPARK_RUNTIME].repository_path == (
        "org/apache/iceberg/iceberg-spark-runtime-3.5_2.12/1.10.0/"
        "iceberg-spark-runtime-3.5_2.12-1.10.0.jar"
    )


@pytest.mark.unit
def test_the_kafka_connector_is_spark_3_5s_with_the_clients_it_declares() -> None:
    """pyspark is 3.5.6; the repositories serve spark-sql-kafka 3.5.7, same line, same deps."""
    pins = pinned_jars()
    assert pins[SPARK_SQL_KAFKA].version.startswith("3.5.")
    assert pins["spark-token-provider-kafka-0-10_2.12"].version == pins[SPARK_SQL_KAFKA].version
    assert pins["kafka-clients"].coordinate == "org.apache.kafka:kafka-clients:3.4.1"
    assert pins["commons-pool2"].coordinate == "org.apache.commons:commons-pool2:2.11.1"


@pytest.mark.unit
def test_a_malformed_lock_line_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "runtime-jars.lock"
    lock.write_text("# pins\norg.apache.iceberg:iceberg-aws-bundle 1234\n")
    with pytest.raises(ConfigurationError, match=r"runtime-jars\.lock:2: expected"):
        pinned_jars(lock)


@pytest.mark.unit
def test_a_jar_is_fetched_once_and_then_checked_without_maven(
    tmp_path: Path, pin: PinnedJar, maven: FolderMaven
) -> None:
    cache = tmp_path / "jars"
    publish(tmp_path / "repository", pin, JAR_BYTES)
    [first] = fetch_jars(cache, [pin], maven)
    assert first.action == "fetched"
    assert first.path == cache / "example-runtime-1.2.3.jar"
    assert first.path.read_bytes() == JAR_BYTES
    assert first.path.stat().st_mode & 0o777 == 0o644, "readable by an image's job user"

    no_maven = Maven(executable=str(tmp_path / "no-mvn"), local_repository=tmp_path / "gone")
    [second] = fetch_jars(cache, [pin], no_maven)
    assert second.action == "present"
    assert maven.calls == [pin.coordinate]


@pytest.mark.unit
def test_a_damaged_jar_in_the_jar_folder_is_fetched_again(
    tmp_path: Path, pin: PinnedJar, maven: FolderMaven
) -> None:
    cache = tmp_path / "jars"
    publish(tmp_path / "repository", pin, JAR_BYTES)
    cache.mkdir()
    (cache / pin.file_name).write_bytes(JAR_BYTES[:-1] + b"!")
    said: list[str] = []
    [jar] = fetch_jars(cache, [pin], maven, say=said.append)
    assert jar.action == "fetched"
    assert jar.path.read_bytes() == JAR_BYTES
    assert said and f"locked {pin.sha256}" in said[0]


@pytest.mark.unit
def test_a_damaged_copy_in_mavens_local_repository_is_dropped_and_fetched_again(
    tmp_path: Path, pin: PinnedJar, maven: FolderMaven
) -> None:
    publish(tmp_path / "repository", pin, JAR_BYTES)
    maven.local_path(pin).parent.mkdir(parents=True)
    maven.local_path(pin).write_bytes(b"truncated")
    [jar] = fetch_jars(tmp_path / "jars", [pin], maven)
    assert jar.path.read_bytes() == JAR_BYTES
    assert maven.local_path(pin).read_bytes() == JAR_BYTES
    assert maven.calls == [pin.coordinate] * 2


@pytest.mark.unit
def test_a_fetched_jar_with_another_digest_is_kept_nowhere(
    tmp_path: Path, pin: PinnedJar, maven: FolderMaven
) -> None:
    cache = tmp_path / "jars"
    publish(tmp_path / "repository", pin, b"not the jar that was pinned")
    with pytest.raises(ConfigurationError, match=r"pins org\.example:example-runtime:1\.2\.3 to"):
        fetch_jars(cache, [pin], maven)
    assert list(cache.iterdir()) == [], "neither the jar nor a partial copy is left"
    assert not maven.local_path(pin).exists(), "nor is it left in Maven's local repository"
    assert maven.calls == [pin.coordinate], "a fresh transfer is not fetched twice"


@pytest.mark.unit
def test_without_mvn_the_error_says_to_install_maven(tmp_path: Path, pin: PinnedJar) -> None:
    no_maven = Maven(executable=str(tmp_path / "no-mvn"), local_repository=tmp_path / "m2")
    with pytest.raises(ConfigurationError, match=r"install Maven \(`apt-get install maven`\)"):
        fetch_jars(tmp_path / "jars", [pin], no_maven)


@pytest.mark.unit
def test_a_missing_jar_tells_to_run_make_venv(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"run `make venv`") as error:
        installed_jar(ICEBERG_SPARK_RUNTIME, cache=tmp_path)
    assert "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0 is missing" in str(error.value)


@pytest.mark.integration
def test_mvn_fetches_from_a_file_repository_and_again_when_its_local_copy_is_damaged(
    tmp_path: Path, pin: PinnedJar
) -> None:
    """Three mvn runs: the first also fetches maven-dependency-plugin into tmp_path."""
    cache, maven = tmp_path / "jars", Maven((tmp_path / "repository").as_uri(), tmp_path / "m2")
    publish(tmp_path / "repository", pin, JAR_BYTES)
    [first] = fetch_jars(cache, [pin], maven)
    assert first.action == "fetched"
    assert first.path.read_bytes() == maven.local_path(pin).read_bytes() == JAR_BYTES

    # mvn serves what its local repository has without checking it again.
    first.path.write_bytes(b"damaged in the jar folder")
    maven.local_path(pin).write_bytes(b"damaged in the local repository")
    [again] = fetch_jars(cache, [pin], maven)
    assert again.action == "fetched"
    assert again.path.read_bytes() == maven.local_path(pin).read_bytes() == JAR_BYTES
