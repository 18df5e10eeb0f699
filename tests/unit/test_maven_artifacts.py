"""Pinned Maven artifacts (maven_artifacts) and the Kafka broker's lock and install
(kafka_server): the lock format, the fetch-once install, a digest that differs.

mvn is replaced by a fake that writes the files, so these run offline;
tests/integration/test_kafka_server.py runs the real broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from sluiceway import kafka_server
from sluiceway.errors import ConfigurationError
from sluiceway.kafka_server import SERVER_ARTIFACT, install_kafka, pinned_server
from sluiceway.local_stack import LocalAwsStack, describe
from sluiceway.maven_artifacts import PinnedArtifact, lock_line, project_pom, read_lock

pytestmark = pytest.mark.unit

DIGEST = "ab" * 32


def test_a_lock_line_reads_back_as_its_pin_with_or_without_an_extension(tmp_path: Path) -> None:
    jar = PinnedArtifact("org.example", "thing_2.13", "4.1.1", DIGEST)
    tarball = PinnedArtifact("io.trino", "trino-server-core", "476", DIGEST, "tar.gz")
    assert jar.coordinate == "org.example:thing_2.13:4.1.1"
    assert tarball.coordinate == "io.trino:trino-server-core:476:tar.gz"
    assert tarball.repository_path == "io/trino/trino-server-core/476/trino-server-core-476.tar.gz"
    lock = tmp_path / "a.lock"
    lock.write_text(f"# comment\n\n{lock_line(jar, 40)}  # trailing comment\n")
    assert read_lock(lock) == [jar]
    lock.write_text(lock_line(tarball) + "\n")
    assert read_lock(lock, extension=True) == [tarball]


@pytest.mark.parametrize(
    ("line", "extension"),
    [
        ("org.example:thing:1.0 abc", False),
        (f"org.example:thing {DIGEST}", False),
        (f"org.example:thing:1.0:jar {DIGEST}", False),
        (f"org.example:thing:1.0 {DIGEST}", True),
        (f"org.example:thing:1.0 {DIGEST} extra", False),
        (f"org.example:thing:1.0 {'zz' * 32}", False),
    ],
)
def test_a_malformed_lock_line_names_the_lock_the_line_and_the_form(
    tmp_path: Path, line: str, extension: bool
) -> None:
    lock = tmp_path / "kafka-server.lock"
    lock.write_text(f"# pins\n{line}\n")
    form = "group:artifact:version:extension" if extension else "group:artifact:version"
    with pytest.raises(
        ConfigurationError, match=rf"kafka-server\.lock:2: expected '{form} sha256'"
    ):
        read_lock(lock, extension=extension)


def test_upper_case_digests_are_accepted_and_kept_lower_case(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    lock.write_text(f"g:a:1 {DIGEST.upper()}\n")
    assert read_lock(lock)[0].sha256 == DIGEST


def test_the_install_pom_names_exactly_the_pinned_jars() -> None:
    pins = [PinnedArtifact("org.example", "a", "1", DIGEST), PinnedArtifact("g", "b", "2", DIGEST)]
    exact = project_pom(pins, transitive=False)
    assert exact.count("<dependency>") == 2
    assert exact.count("<exclusion><groupId>*</groupId><artifactId>*</artifactId>") == 2
    assert "<exclusion>" not in project_pom(pins, transitive=True)


def test_the_kafka_lock_pins_a_kafka_4_broker_and_its_whole_class_path() -> None:
    pins = {pin.artifact: pin for pin in pinned_server()}
    assert pins[SERVER_ARTIFACT].group == "org.apache.kafka"
    assert pins[SERVER_ARTIFACT].version.startswith("4.")
    same_release = (
        "kafka-clients",
        "kafka-server",
        "kafka-raft",
        "kafka-metadata",
        "kafka-storage",
    )
    for artifact in same_release:
        assert pins[artifact].version == pins[SERVER_ARTIFACT].version, artifact
    # Logging to a file needs log4j2 and the slf4j binding the POM does not name.
    assert {"log4j-core", "log4j-slf4j-impl", "slf4j-api", "scala-library"} <= set(pins)
    assert len({pin.sha256 for pin in pins.values()}) == len(pins)


def test_a_lock_without_the_broker_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "kafka-server.lock"
    lock.write_text(f"org.apache.kafka:kafka-clients:4.1.1 {DIGEST}\n")
    with pytest.raises(ConfigurationError, match=r"pins no org\.apache\.kafka:kafka_2\.13"):
        pinned_server(lock)


@pytest.fixture
def fake_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[int]]:
    """A two-jar lock, and an mvn that copies the jars' bytes (one run per call)."""
    files = {"kafka_2.13": b"broker jar", "kafka-clients": b"client jar"}
    lock = tmp_path / "kafka-server.lock"
    lock.write_text(
        "".join(
            f"org.apache.kafka:{name}:4.1.1 {hashlib.sha256(data).hexdigest()}\n"
            for name, data in files.items()
        )
    )
    runs: list[int] = []

    def copy_pinned(
        pins: Sequence[PinnedArtifact], target: Path, local_repository: Path, **_: str
    ) -> dict[PinnedArtifact, Path]:
        runs.append(len(pins))
        target.mkdir(parents=True, exist_ok=True)
        for pin in pins:
            (target / pin.file_name).write_bytes(files[pin.artifact])
        return {pin: target / pin.file_name for pin in pins}

    monkeypatch.setattr(kafka_server, "copy_pinned", copy_pinned)
    return lock, runs


def test_the_broker_is_installed_in_one_mvn_run_and_not_again(
    tmp_path: Path, fake_maven: tuple[Path, list[int]]
) -> None:
    lock, runs = fake_maven
    cache = tmp_path / "kafka"
    install = install_kafka(cache, lock, tmp_path / "m2", say=lambda _: None)
    assert install.home == cache / "4.1.1"
    assert (install.home / "libs" / "kafka_2.13-4.1.1.jar").read_bytes() == b"broker jar"
    assert install.classpath == f"{install.home}/libs/*"
    again = install_kafka(cache, lock, tmp_path / "m2", say=lambda _: None)
    assert again == install and runs == [2], "a complete install was fetched again"


def test_a_jar_with_another_digest_fails_the_install_and_is_kept_nowhere(
    tmp_path: Path, fake_maven: tuple[Path, list[int]]
) -> None:
    lock, _ = fake_maven
    lines = lock.read_text().splitlines()
    lines[0] = f"org.apache.kafka:kafka_2.13:4.1.1 {DIGEST}"  # not the fake broker jar's
    lock.write_text("\n".join(lines) + "\n")
    repository = tmp_path / "m2"
    damaged = repository / "org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"broker jar")
    with pytest.raises(
        ConfigurationError, match=r"kafka_2\.13:4\.1\.1: sha256 [0-9a-f]{64}, locked"
    ):
        install_kafka(tmp_path / "kafka", lock, repository, say=lambda _: None)
    assert not (tmp_path / "kafka" / "4.1.1").exists()
    assert not list((tmp_path / "kafka").iterdir()), "no staging folder is left"
    assert not damaged.exists(), "mvn would serve the local repository's copy again"


def test_the_broker_listens_on_127_0_0_1_only_and_creates_no_topic_by_itself(
    tmp_path: Path,
) -> None:
    properties = kafka_server.server_properties(tmp_path, 9092, 9093, partitions=3)
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["num.partitions"] == "3"
    assert "-Xmx512m" in kafka_server.jvm_options(tmp_path / "logs")


def test_the_stack_names_its_kafka_broker_only_when_one_runs(tmp_path: Path) -> None:
    without = LocalAwsStack("http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path)
    assert "SLUICEWAY_KAFKA_BOOTSTRAP" not in without.variables()
    stack = LocalAwsStack(
        "http://127.0.0.1:1", "http://127.0.0.1:2", tmp_path, kafka_bootstrap="127.0.0.1:3"
    )
    assert stack.variables()["SLUICEWAY_KAFKA_BOOTSTRAP"] == "127.0.0.1:3"
    assert "export SLUICEWAY_KAFKA_BOOTSTRAP=127.0.0.1:3" in describe(stack)
