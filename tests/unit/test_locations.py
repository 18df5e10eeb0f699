"""One answer to "is this S3?" and "where is that file?" for every module.

The old checks disagreed: `startswith("s3")` (spark.py) took a local folder named `s3cache`
for S3, and `startswith("s3://")` (query.py, outcome.py, source.py) took an `s3a://`
warehouse for a local folder. These tests pin the one rule: `s3://` and `s3a://` are S3,
nothing else is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyarrow import fs as pafs

from sluiceway.locations import (
    MANIFEST_SUFFIX,
    canonical_source,
    is_s3,
    is_uri,
    local_path,
    manifest_location,
    resolve,
    split_s3,
)
from sluiceway.orchestration.outcome import record_outcome
from sluiceway.query import is_athena
from sluiceway.settings import load_settings
from sluiceway.spark import spark_conf

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("location", "s3"),
    [
        ("s3://bucket/key.csv", True),
        ("s3a://bucket/warehouse", True),
        ("s3cache/warehouse", False),
        ("./s3", False),
        ("/data/s3://odd", False),
        ("file:///tmp/landing.csv", False),
        ("gs://bucket/key", False),
    ],
)
def test_only_s3_and_s3a_uris_are_s3(location: str, s3: bool) -> None:
    assert is_s3(location) is s3


def test_a_uri_has_a_scheme_and_a_path_has_none() -> None:
    assert is_uri("file:///tmp/x") and is_uri("s3://b/k")
    assert not is_uri("/tmp/x") and not is_uri("warehouse")


def test_bucket_and_key_of_either_s3_scheme() -> None:
    assert split_s3("s3://landing/incoming/2026-11-25/a.csv") == (
        "landing",
        "incoming/2026-11-25/a.csv",
    )
    assert split_s3("s3a://warehouse/_outcomes/e1/ingest-1.json") == (
        "warehouse",
        "_outcomes/e1/ingest-1.json",
    )
    assert split_s3("s3://bucket-only") == ("bucket-only", "")
    with pytest.raises(ValueError, match="not an S3 URI"):
        split_s3("/tmp/landing.csv")


def test_local_path_and_canonical_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_path("file:///tmp/a.csv") == Path("/tmp/a.csv")
    assert local_path("landing/a.csv") == Path("landing/a.csv")
    assert canonical_source("landing/a.csv") == str(tmp_path / "landing" / "a.csv")
    assert canonical_source("s3://landing/a.csv") == "s3://landing/a.csv"


def test_manifest_sits_beside_the_landing_file() -> None:
    assert manifest_location("s3://landing/a.csv") == "s3://landing/a.csv" + MANIFEST_SUFFIX
    assert manifest_location("./in//a.csv") == "in/a.csv.manifest.json"


def test_resolve_opens_local_paths_and_file_uris(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    for location in (str(tmp_path / "a.csv"), f"file://{tmp_path}/a.csv"):
        filesystem, path = resolve(location)
        assert isinstance(filesystem, pafs.LocalFileSystem)
        assert filesystem.get_file_info(path).size == 1


def test_a_local_folder_named_like_s3_is_a_local_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was `startswith("s3")` in spark.py: the Glue catalog for a local folder."""
    monkeypatch.chdir(tmp_path)
    conf = spark_conf(load_settings(arguments={"warehouse": "s3cache"}))
    assert conf["spark.sql.catalog.lake.type"] == "hadoop"
    assert conf["spark.sql.catalog.lake.warehouse"] == str(tmp_path / "s3cache")


def test_an_s3a_warehouse_is_read_through_athena_and_uses_the_glue_catalog() -> None:
    """Was `startswith("s3://")` in query.py: DuckDB over a local folder named `s3a:`."""
    settings = load_settings(arguments={"warehouse": "s3a://lake/warehouse"})
    assert is_athena(settings)
    assert "spark.sql.catalog.lake.catalog-impl" in spark_conf(settings)


def test_outcome_goes_to_a_local_file_uri_as_a_plain_path(tmp_path: Path) -> None:
    target = tmp_path / "outcomes" / "ingest.json"
    assert record_outcome(3, ["--outcome-uri", f"file://{target}"]) == 3
    assert json.loads(target.read_text())["kind"] == "data"
