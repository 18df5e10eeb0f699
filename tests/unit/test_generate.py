"""The sample generator: deterministic, every defect kind, a manifest that adds up."""

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.generate import DEFECT_KINDS, generate_landing_file, manifest_path

pytestmark = pytest.mark.unit


def test_same_seed_gives_the_same_bytes(tmp_path: Path):
    first = generate_landing_file(tmp_path / "a.csv", 2000, seed=11, defect_rate=0.01)
    second = generate_landing_file(tmp_path / "b.csv", 2000, seed=11, defect_rate=0.01)
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_defects_cover_every_reason_the_generator_knows(tmp_path: Path):
    manifest = generate_landing_file(tmp_path / "d.csv", 20_000, seed=1, defect_rate=0.02)
    assert set(manifest.rejected_by_reason) == {*DEFECT_KINDS, c.UNTERMINATED_QUOTE}
    assert set(c.REASONS) - set(manifest.rejected_by_reason) == {c.ALREADY_INGESTED}


def test_manifest_counts_add_up_and_sit_beside_the_file(tmp_path: Path):
    landing = tmp_path / "m.csv"
    generate_landing_file(landing, 5000, seed=2, defect_rate=0.03)
    saved = json.loads(manifest_path(landing).read_text())
    assert saved["records"] == saved["accepted"] + saved["rejected"] == 5000
    assert sum(saved["accepted_count_by_currency"].values()) == saved["accepted"]
    assert saved["sha256"] == hashlib.sha256(landing.read_bytes()).hexdigest()


def test_records_are_in_the_expected_size_range(tmp_path: Path):
    landing = tmp_path / "s.csv"
    generate_landing_file(landing, 10_000, seed=3)
    assert 110 <= landing.stat().st_size / 10_000 <= 150


def test_gzip_output_holds_the_same_records(tmp_path: Path):
    generate_landing_file(tmp_path / "p.csv", 1000, seed=4)
    generate_landing_file(tmp_path / "p.csv.gz", 1000, seed=4, compress=True)
    assert (
        gzip.decompress((tmp_path / "p.csv.gz").read_bytes()) == (tmp_path / "p.csv").read_bytes()
    )
