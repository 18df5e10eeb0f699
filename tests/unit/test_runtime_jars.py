"""The pinned JVM jars: fetched once, checked against the lock, never kept when they differ.

A `file://` Maven repository in tmp_path stands in for Maven Central (urllib reads both the
same way); the real download is what `make venv` does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sluiceway.errors import ConfigurationError
from sluiceway.runtime_jars import (
    ICEBERG_AWS_BUNDLE,
    ICEBERG_SPARK_RUNTIME,
    PinnedJar,
    fetch_jars,
    installed_jar,
    pinned_jars,
)

pytestmark = pytest.mark.unit

JAR_BYTES = b"PK\x03\x04 a jar, as far as this test is concerned"


def publish(repository: Path, pin: PinnedJar, content: bytes) -> None:
    """Put a jar where a Maven repository keeps it."""
    target = Path(pin.url(repository.as_uri()).removeprefix("file://"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


@pytest.fixture
def pin() -> PinnedJar:
    digest = hashlib.sha256(JAR_BYTES).hexdigest()
    return PinnedJar("org.example", "example-runtime", "1.2.3", digest)


def test_the_lock_pins_the_iceberg_release_that_glue_5_1_ships() -> None:
    pins = pinned_jars()
    assert set(pins) == {ICEBERG_SPARK_RUNTIME, ICEBERG_AWS_BUNDLE}
    for pin in pins.values():
        assert (pin.group, pin.version) == ("org.apache.iceberg", "1.10.0")
        assert len(pin.sha256) == 64
    runtime = pins[ICEBERG_SPARK_RUNTIME]
    assert runtime.url() == (
        "https://repo1.maven.org/maven2/org/apache/iceberg/iceberg-spark-runtime-3.5_2.12/"
        "1.10.0/iceberg-spark-runtime-3.5_2.12-1.10.0.jar"
    )


def test_a_malformed_lock_line_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "runtime-jars.lock"
    lock.write_text("# pins\norg.apache.iceberg:iceberg-aws-bundle 1234\n")
    with pytest.raises(ConfigurationError, match=r"runtime-jars\.lock:2: expected"):
        pinned_jars(lock)


def test_a_jar_is_fetched_once_and_then_found_without_the_repository(
    tmp_path: Path, pin: PinnedJar
) -> None:
    repository, cache = tmp_path / "repository", tmp_path / "jars"
    publish(repository, pin, JAR_BYTES)
    [first] = fetch_jars(cache, [pin], repository.as_uri())
    assert first.action == "fetched"
    assert first.path == cache / "example-runtime-1.2.3.jar"
    assert first.path.read_bytes() == JAR_BYTES
    assert first.path.stat().st_mode & 0o777 == 0o644, "readable by an image's job user"

    [second] = fetch_jars(cache, [pin], (tmp_path / "gone").as_uri())
    assert second.action == "present"


def test_a_damaged_jar_in_the_cache_is_downloaded_again(tmp_path: Path, pin: PinnedJar) -> None:
    repository, cache = tmp_path / "repository", tmp_path / "jars"
    publish(repository, pin, JAR_BYTES)
    cache.mkdir()
    (cache / pin.file_name).write_bytes(JAR_BYTES[:-1] + b"!")
    said: list[str] = []
    [jar] = fetch_jars(cache, [pin], repository.as_uri(), say=said.append)
    assert jar.action == "fetched"
    assert jar.path.read_bytes() == JAR_BYTES
    assert said and f"locked {pin.sha256}" in said[0]


def test_a_download_with_another_digest_is_not_kept(tmp_path: Path, pin: PinnedJar) -> None:
    repository, cache = tmp_path / "repository", tmp_path / "jars"
    publish(repository, pin, b"not the jar that was pinned")
    with pytest.raises(ConfigurationError, match=r"pins org\.example:example-runtime:1\.2\.3 to"):
        fetch_jars(cache, [pin], repository.as_uri())
    assert list(cache.iterdir()) == [], "neither the jar nor a partial download is left"


def test_a_missing_jar_tells_to_run_make_venv(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"run `make venv`") as error:
        installed_jar(ICEBERG_SPARK_RUNTIME, cache=tmp_path)
    assert "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0 is missing" in str(error.value)
