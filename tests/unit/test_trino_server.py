"""The pinned Trino: lock, fetch-once install, Java choice; and the Trino client's typing.

mvn is replaced by a fake that drops files into the local repository, so these run offline;
tests/integration/test_analyst_sql_trino.py runs the real server.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from sluiceway import trino_server
from sluiceway.errors import ConfigurationError
from sluiceway.query_athena import parse_athena_value
from sluiceway.query_trino import athena_text, typed
from sluiceway.trino_server import (
    ICEBERG_ARTIFACT,
    SERVER_ARTIFACT,
    find_java_home,
    install_trino,
    pinned_artifacts,
)

pytestmark = pytest.mark.unit


def test_the_lock_pins_the_server_core_and_the_iceberg_plugin_of_one_release() -> None:
    pins = pinned_artifacts()
    assert {pins[SERVER_ARTIFACT].extension, pins[ICEBERG_ARTIFACT].extension} == {"tar.gz", "zip"}
    assert pins[SERVER_ARTIFACT].version == pins[ICEBERG_ARTIFACT].version


def test_a_malformed_lock_line_names_the_lock_and_the_line(tmp_path: Path) -> None:
    lock = tmp_path / "trino-server.lock"
    lock.write_text("# comment\nio.trino:trino-server-core:476 abc\n")
    with pytest.raises(ConfigurationError, match=r"trino-server.lock:2: expected"):
        pinned_artifacts(lock)


def _server_tarball() -> bytes:
    """A tiny trino-server-core tarball: a top folder, a jar in lib/, its hard link in a plugin."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        jar = tarfile.TarInfo("trino-server-core-476/lib/guava.jar")
        jar.size = 5
        tar.addfile(jar, io.BytesIO(b"guava"))
        link = tarfile.TarInfo("trino-server-core-476/plugin/geospatial/guava.jar")
        link.type = tarfile.LNKTYPE
        link.linkname = "trino-server-core-476/lib/guava.jar"
        tar.addfile(link)
    return buffer.getvalue()


def _plugin_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as plugin:
        plugin.writestr("trino-iceberg-476/iceberg.jar", b"iceberg")
    return buffer.getvalue()


@pytest.fixture
def fake_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, list[str]]:
    """A lock pinning the tiny archives, and an mvn that copies them into the local repo."""
    files = {"tar.gz": _server_tarball(), "zip": _plugin_zip()}
    lock = tmp_path / "trino-server.lock"
    lock.write_text(
        f"io.trino:{SERVER_ARTIFACT}:476:tar.gz {hashlib.sha256(files['tar.gz']).hexdigest()}\n"
        f"io.trino:{ICEBERG_ARTIFACT}:476:zip {hashlib.sha256(files['zip']).hexdigest()}\n"
    )
    fetched: list[str] = []

    def mvn_get(pin: trino_server.PinnedArtifact, repository: Path) -> None:
        fetched.append(pin.artifact)
        path = repository / pin.repository_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[pin.extension])

    monkeypatch.setattr(trino_server, "_mvn_get", mvn_get)
    return lock, tmp_path / "m2", fetched


def test_install_fetches_unpacks_and_is_not_repeated(
    tmp_path: Path, fake_maven: tuple[Path, Path, list[str]]
) -> None:
    lock, repository, fetched = fake_maven
    cache = tmp_path / "trino"
    install = install_trino(cache, lock, repository, say=lambda _: None)
    assert (install.home / "lib" / "guava.jar").read_bytes() == b"guava"
    assert (install.home / "plugin" / "geospatial" / "guava.jar").read_bytes() == b"guava"
    assert (install.plugin_dir / "iceberg" / "iceberg.jar").read_bytes() == b"iceberg"
    assert sorted(fetched) == [ICEBERG_ARTIFACT, SERVER_ARTIFACT]
    again = install_trino(cache, lock, repository, say=lambda _: None)
    assert again == install and len(fetched) == 2, "a complete install is fetched again"


def test_a_file_with_another_digest_is_not_kept(
    tmp_path: Path, fake_maven: tuple[Path, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock, repository, _ = fake_maven

    def mvn_get(pin: trino_server.PinnedArtifact, repository: Path) -> None:
        path = repository / pin.repository_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not the pinned file")

    monkeypatch.setattr(trino_server, "_mvn_get", mvn_get)
    with pytest.raises(ConfigurationError, match="it was not kept"):
        install_trino(tmp_path / "trino", lock, repository, say=lambda _: None)
    assert not list(repository.rglob("*.tar.gz")), "the damaged file stayed in ~/.m2"
    assert not (tmp_path / "trino" / "476").exists()


def _jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_trino_gets_the_newest_java_24_or_later_not_sparks_17(tmp_path: Path) -> None:
    _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    newest = _jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    _jdk(tmp_path, "temurin-24-jdk-amd64", "24.0.1")
    assert find_java_home(search=[tmp_path]) == newest
    with pytest.raises(ConfigurationError, match="is no Java 24"):
        find_java_home(tmp_path / "java-17-openjdk-amd64")


def test_no_java_24_says_what_to_install(tmp_path: Path) -> None:
    _jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(ConfigurationError, match="no Java 24"):
        find_java_home(search=[tmp_path])


DECIMAL_MAP = {
    "rawType": "map",
    "arguments": [
        {"kind": "TYPE", "value": {"rawType": "varchar", "arguments": []}},
        {
            "kind": "TYPE",
            "value": {
                "rawType": "decimal",
                "arguments": [{"kind": "LONG", "value": 38}, {"kind": "LONG", "value": 2}],
            },
        },
    ],
}


def test_trino_values_are_typed_as_the_other_backends_type_them() -> None:
    assert typed("60797.70", {"rawType": "decimal"}) == Decimal("60797.70")
    assert typed({"EUR": "1.50"}, DECIMAL_MAP) == {"EUR": Decimal("1.50")}
    stamp = typed("2026-01-05 10:00:00.123456 UTC", {"rawType": "timestamp with time zone"})
    assert stamp == pd.Timestamp("2026-01-05 10:00:00.123456", tz="UTC")
    assert typed("2026-01-05", {"rawType": "date"}).isoformat() == "2026-01-05"
    assert typed(None, DECIMAL_MAP) is None


def test_nested_values_reach_the_athena_parser_as_athenas_text() -> None:
    value = {"EUR": Decimal("60797.70"), "USD": Decimal("-3.10")}
    assert athena_text(value) == "{EUR=60797.70, USD=-3.10}"
    assert parse_athena_value(athena_text(value), Decimal) == value
    assert parse_athena_value(athena_text([["a", "b"], [], [None]])) == [["a", "b"], [], [None]]
