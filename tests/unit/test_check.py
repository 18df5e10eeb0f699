"""`sluiceway check`: the ingest's scan, tokenizer and rules without Spark; its counts must be
the ones a correct ingest reports (the generator's manifest), and a whole-file failure exits 2.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.cli import main
from sluiceway.generate import Manifest, generate_landing_file
from sluiceway.ingest import check
from sluiceway.ingest.check import CheckResult, check_landing_file
from sluiceway.ingest.landing import LandingScan
from sluiceway.settings import Settings

pytestmark = pytest.mark.unit

# 1 MiB chunks: the generated files below are cut into several, so two workers share them.
SMALL_CHUNKS = Settings(parse_chunk_mb=1)
VALID = "{id},DE89001,M1,10.00,EUR,2026-11-25T10:00:00Z,settled,ecommerce,5411,DE,{text}"
# A rejected line as `check` shows it: account_id and counterparty_id masked, last four kept.
MASKED = VALID.replace("DE89001,M1,", "***9001,**,")


def assert_matches_manifest(result: CheckResult, manifest: Manifest) -> None:
    assert result.passed and result.exit_code == 0
    assert (result.records, result.lines) == (manifest.records, manifest.lines)
    assert (result.accepted, result.rejected) == (manifest.accepted, manifest.rejected)
    assert result.rejected_by_reason == dict(manifest.rejected_by_reason)
    assert result.accepted_lines + result.rejected_lines == result.lines


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    path = tmp_path_factory.mktemp("check") / "tx.csv"
    return path, generate_landing_file(path, 20_000, seed=5, defect_rate=0.05)


def test_counts_equal_the_manifest_of_a_generated_file(generated: tuple[Path, Manifest]) -> None:
    path, manifest = generated
    assert manifest.rejected_by_reason[c.DUPLICATE_IN_FILE] > 0
    assert_matches_manifest(check_landing_file(str(path), SMALL_CHUNKS, workers=2), manifest)


def test_one_worker_and_two_workers_agree(generated: tuple[Path, Manifest]) -> None:
    path, _ = generated
    alone = check_landing_file(str(path), SMALL_CHUNKS, show=25, workers=1).to_json()
    shared = check_landing_file(str(path), SMALL_CHUNKS, show=25, workers=2).to_json()
    assert {**alone, "seconds": 0} == {**shared, "seconds": 0}


@pytest.mark.parametrize(("ending", "members"), [("crlf", 3), ("cr", 1)])
def test_gzip_members_and_line_ends_are_read_like_the_ingest(
    tmp_path: Path, ending: str, members: int
) -> None:
    path = tmp_path / "tx.csv.gz"
    manifest = generate_landing_file(
        path, 3000, seed=8, defect_rate=0.05, compress=True, line_ending=ending,
        gzip_members=members,
    )  # fmt: skip
    assert_matches_manifest(check_landing_file(str(path), Settings()), manifest)


def test_first_rejected_lines_are_in_line_order_with_duplicates_and_raw_text(
    tmp_path: Path,
) -> None:
    lines = [
        VALID.format(id="A", text="first"),
        VALID.format(id="B", text="two\nlines").replace("two\nlines", '"two\nlines"'),
        VALID.format(id="A", text="again"),
        VALID.format(id="A", text="x").replace("EUR", "XXY"),
        VALID.format(id="C", text='12" pizza'),
    ]
    path = tmp_path / "tx.csv"
    path.write_text(c.HEADER_LINE + "\n" + "\n".join(lines) + "\n")

    result = check_landing_file(str(path), Settings(), show=10)

    assert [(r.line_number, r.reasons) for r in result.first_rejected] == [
        (5, (c.DUPLICATE_IN_FILE,)),
        (6, (c.UNKNOWN_CURRENCY, c.DUPLICATE_IN_FILE)),
        (7, (c.BAD_QUOTING,)),
    ]
    duplicate, both, stray = result.first_rejected
    assert duplicate.reason_detail == (
        "line 5: duplicate_in_file: transaction_id 'A' already appears on line 2"
    )
    assert duplicate.raw_line == MASKED.format(id="A", text="again")
    assert both.reason_detail == (
        "line 6: unknown_currency: currency 'XXY' is not an ISO 4217 code; "
        "duplicate_in_file: transaction_id 'A' already appears on line 2"
    )
    assert stray.raw_line == MASKED.format(id="C", text='12" pizza')
    assert (result.lines, result.records, result.accepted_lines, result.rejected_lines) == (
        6,
        5,
        3,
        3,
    )
    assert [r.line_number for r in check_landing_file(str(path), Settings(), 2).first_rejected] == [
        5,
        6,
    ]


def test_a_duplicate_in_another_chunk_is_found(tmp_path: Path) -> None:
    body = [VALID.format(id=f"T{number}", text="x" * 40) for number in range(30_000)]
    path = tmp_path / "tx.csv"
    path.write_text("\n".join([c.HEADER_LINE, *body, VALID.format(id="T7", text="late")]) + "\n")

    result = check_landing_file(str(path), SMALL_CHUNKS, workers=2)

    assert result.rejected_by_reason == {c.DUPLICATE_IN_FILE: 1}
    (late,) = result.first_rejected
    assert late.line_number == 30_002
    assert late.reason_detail.endswith("transaction_id 'T7' already appears on line 9")


def test_cli_json_and_table_report_the_same_counts(
    generated: tuple[Path, Manifest], capsys: pytest.CaptureFixture[str]
) -> None:
    path, manifest = generated
    assert main(["check", str(path), "--format", "json", "--show", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["records"] == manifest.records and report["lines"] == manifest.lines
    assert report["rejected_by_reason"] == dict(sorted(manifest.rejected_by_reason.items()))
    assert report["not_checked"] == [c.ALREADY_INGESTED]
    assert len(report["first_rejected"]) == 3

    assert main(["check", str(path)]) == 0
    table = capsys.readouterr().out
    assert f"{manifest.records:,} records: {manifest.accepted:,} accepted" in table
    duplicates = manifest.rejected_by_reason[c.DUPLICATE_IN_FILE]
    assert re.search(rf"^  duplicate_in_file +{duplicates:,}$", table, re.MULTILINE)
    assert "not checked: already_ingested (needs the warehouse)" in table
    assert report["first_rejected"][0]["reason_detail"] in table


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"a,b\n1,2\n", "wrong header"),
        (b"", "no header"),
        (gzip.compress(c.HEADER_LINE.encode() + b"\n" + b"x" * 5000)[:-30], "truncated gzip"),
    ],
)
def test_a_whole_file_failure_exits_2_with_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, rule: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    assert main(["check", str(path), "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["failed_rule"]) == (False, rule)
    assert report["problem"].startswith(f"{path}: {rule}: ")

    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().out.startswith(f"FAILED whole-file rule '{rule}': {path}")


def test_a_file_that_changes_after_the_scan_fails_in_the_workers(
    generated: tuple[Path, Manifest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.csv"
    path.write_bytes(generated[0].read_bytes())
    real_scan = check.scan_landing_file

    def scan_then_truncate(*args: object) -> LandingScan:
        scan = real_scan(*args)  # type: ignore[arg-type]
        with open(path, "r+b") as landing:
            landing.truncate(scan.file_bytes // 2)
        return scan

    # The workers are forked after the scan: they read the truncated file.
    monkeypatch.setattr(check, "scan_landing_file", scan_then_truncate)
    result = check_landing_file(str(path), SMALL_CHUNKS, workers=2)

    assert (result.passed, result.exit_code) == (False, 2)
    assert result.failed_rule == "file changed during the ingest"


def test_a_header_only_file_passes_with_nothing_to_check(tmp_path: Path) -> None:
    path = tmp_path / "empty-day.csv"
    path.write_text(c.HEADER_LINE + "\n")
    result = check_landing_file(str(path), Settings())
    assert result.passed and (result.lines, result.records, result.first_rejected) == (0, 0, ())


def test_a_reordered_header_passes_and_the_policy_outcome_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = [*reversed(c.COLUMN_NAMES), "loyalty_tier"]
    row = dict(zip(c.COLUMN_NAMES, VALID.format(id="T1", text="x").split(","), strict=True))
    path = tmp_path / "tx.csv"
    path.write_text(
        ",".join(name.upper() for name in columns)
        + "\n"
        + ",".join([*(row[name] for name in columns[:-1]), "gold"])
        + "\n"
    )

    assert main(["check", str(path), "--format", "json"]) == 2  # unknown_columns = fail
    assert "unknown column 'LOYALTY_TIER'" in json.loads(capsys.readouterr().out)["problem"]

    monkeypatch.setenv("SLUICEWAY_UNKNOWN_COLUMNS", "rescue")
    assert main(["check", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["accepted"], report["rejected"]) == (1, 0)
    assert report["header"] == {
        "reordered": True,
        "missing_optional": [],
        "ignored_columns": [],
        "rescued_columns": ["LOYALTY_TIER"],  # as the file names it
    }
    monkeypatch.setenv("SLUICEWAY_UNKNOWN_COLUMNS", "ignore")
    assert main(["check", str(path)]) == 0
    assert (
        "  header: the contract's columns matched by name, in another order; "
        "ignored: LOYALTY_TIER\n"
    ) in capsys.readouterr().out


def test_a_canonical_header_is_reported_in_order(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(c.HEADER_LINE + "\n" + VALID.format(id="T1", text="x") + "\n")
    result = check_landing_file(str(path), Settings())
    assert "  header: the contract's columns in order\n" in result.to_text()
    assert result.to_json()["header"] == {
        "reordered": False,
        "missing_optional": [],
        "ignored_columns": [],
        "rescued_columns": [],
    }
