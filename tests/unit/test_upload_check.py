"""`sluiceway upload --check`: a complete file that breaks a whole-file rule is not uploaded.

No S3 here: a file the check refuses must never reach S3 (the client is None), and a file
that passes is only reported by a dry run; the upload itself is tested against a real local
S3 server in tests/integration/test_upload_s3.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluiceway import contract as c
from sluiceway.cli import main
from sluiceway.generate import generate_landing_file
from sluiceway.logs import LOGGER_NAME
from sluiceway.settings import Settings
from sluiceway.upload import UploadOptions, run_upload

pytestmark = pytest.mark.unit


def options_for(tmp_path: Path, **overrides: object) -> UploadOptions:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    settings: dict[str, object] = {
        "watch_dir": tmp_path / "inbox",
        "bucket": "landing",
        "archive_dir": tmp_path / "archive",
        "check_settings": Settings(),
    }
    settings.update(overrides)
    return UploadOptions(**settings)  # type: ignore[arg-type]


def complete(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    (path.parent / (path.name + ".done")).touch()
    return path


@pytest.fixture(autouse=True)
def sluiceway_logs_propagate() -> Iterator[None]:
    """An earlier test in the same run may have configured the sluiceway logger (JSON to
    stderr, no propagation); let its records reach caplog here, then put it back."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.propagate, logger.level)
    logger.propagate = True
    yield
    logger.handlers[:], logger.propagate, logger.level = saved


def test_a_file_failing_a_whole_file_rule_stays_where_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = options_for(tmp_path)
    landing = complete(options.watch_dir / "tx.csv", b"id,amount\n1,2\n")

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        report = run_upload(None, options)  # no S3 client: a refused file must not reach S3

    assert report.summary()["check_failed"] == ["tx.csv"]
    assert report.exit_code == 4
    assert landing.exists() and (options.watch_dir / "tx.csv.done").exists()
    assert not any(options.archive_dir.iterdir())
    (line,) = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "check_failed"]
    assert line.levelno == logging.ERROR
    assert line.getMessage().startswith("check_failed: tx.csv fails the whole-file rule")
    assert (line.fields["file"], line.fields["rule"]) == ("tx.csv", "wrong header")


def test_a_file_with_rejected_lines_but_whole_file_rules_kept_would_upload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = options_for(tmp_path, dry_run=True)
    manifest = generate_landing_file(options.watch_dir / "tx.csv", 500, defect_rate=0.1)
    (options.watch_dir / "tx.csv.done").touch()
    complete(options.watch_dir / "broken.csv.gz", b"\x1f\x8b\x08" + b"\x00" * 20)

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        report = run_upload(None, options)

    assert report.summary()["would_upload"] == ["tx.csv"]
    assert report.summary()["check_failed"] == ["broken.csv.gz"]
    (passed,) = [
        r for r in caplog.records if getattr(r, "fields", {}).get("event") == "check_passed"
    ]
    assert passed.fields["rejected"] == manifest.rejected > 0


def test_without_check_a_bad_file_is_not_inspected(tmp_path: Path) -> None:
    options = options_for(tmp_path, dry_run=True, check_settings=None)
    complete(options.watch_dir / "tx.csv", b"id,amount\n1,2\n")
    assert run_upload(None, options).summary()["would_upload"] == ["tx.csv"]


def test_cli_upload_check_reports_the_refused_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sluiceway_logs_propagate: None
) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    complete(inbox / "good.csv", (c.HEADER_LINE + "\n").encode())
    complete(inbox / "bad.csv", b"nonsense\n")

    code = main(
        ["upload", "--watch-dir", str(inbox), "--bucket", "landing", "--archive-dir",
         str(archive), "--dry-run", "--check"]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert code == 4
    summary = json.loads(captured.out)
    assert (summary["would_upload"], summary["check_failed"]) == (["good.csv"], ["bad.csv"])
    logged = [json.loads(line) for line in captured.err.splitlines()]
    assert [line["rule"] for line in logged if line.get("event") == "check_failed"] == [
        "wrong header"
    ]
