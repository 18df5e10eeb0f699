"""The decision records keep one format, and every link to one leads to a file.

A record renamed or renumbered without its links updated is found here, not by a reader.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ADR_DIR = ROOT / "docs" / "adr"
NAME = re.compile(r"^(\d{4})-[a-z0-9]+(?:-[a-z0-9]+)*\.md$")
TITLE = re.compile(r"^# (\d{4})\. \S.*$")
DATE = re.compile(r"^Date: (\d{4}-\d{2}-\d{2})$")
STATUS = re.compile(r"^Status: (?:accepted|superseded by (\d{4}))(?: \(.+\))?$")
SECTIONS = ["Context", "Decision", "Consequences"]

# Where links to a record can be: everything a person or a tool reads, not what is generated.
# Hidden folders (.git, .venv, caches) are skipped too.
SKIPPED_DIRS = {"node_modules", "build", "dist", "warehouse", "spark-warehouse"}
LINKING_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".json", ".ipynb", ".toml", ".cfg", ".txt"}
LINKING_NAMES = {"Makefile", "Dockerfile"}
ADR_LINK = re.compile(r"(?<![\w/.-])((?:docs/)?adr/[\w.-]+\.md)")


def _records() -> list[Path]:
    return sorted(path for path in ADR_DIR.glob("*.md") if path.name != "README.md")


def _header(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[:5]


def test_records_are_numbered_one_after_another():
    names = [path.name for path in _records()]
    assert names, f"no decision records in {ADR_DIR}"
    unnamed = [name for name in names if not NAME.match(name)]
    assert not unnamed, f"not NNNN-short-title.md: {unnamed}"
    numbers = [int(NAME.match(name).group(1)) for name in names]
    assert numbers == list(range(1, len(numbers) + 1)), f"gaps or repeats: {names}"


@pytest.mark.parametrize("path", _records(), ids=lambda path: path.name)
def test_record_starts_with_number_date_and_status(path: Path):
    title, blank, date_line, blank_too, status = _header(path)
    number = path.name[:4]
    assert TITLE.match(title), f"{path.name}:1: expected '# {number}. Title', got {title!r}"
    assert TITLE.match(title).group(1) == number, f"{path.name}:1: number differs from the file"
    assert blank == blank_too == "", f"{path.name}: blank lines around 'Date:' expected"
    assert DATE.match(date_line), f"{path.name}:3: expected 'Date: YYYY-MM-DD', got {date_line!r}"
    date.fromisoformat(DATE.match(date_line).group(1))
    found = STATUS.match(status)
    assert found, f"{path.name}:5: expected 'Status: accepted|superseded by NNNN', got {status!r}"
    if found.group(1):
        assert list(ADR_DIR.glob(f"{found.group(1)}-*.md")), f"{path.name}: {status!r}: no such"


@pytest.mark.parametrize("path", _records(), ids=lambda path: path.name)
def test_record_has_context_decision_consequences_in_that_order(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    sections = [line[3:] for line in lines if line.startswith("## ")]
    assert sections == SECTIONS, f"{path.name}: sections {sections}, expected {SECTIONS}"


def test_records_are_in_the_order_their_decisions_were_made():
    dates = [DATE.match(_header(path)[2]).group(1) for path in _records()]
    assert dates == sorted(dates), f"dates out of order: {dates}"


def test_index_lists_every_record():
    index = (ADR_DIR / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\((\d{4}-[\w-]+\.md)\)", index))
    assert listed == {path.name for path in _records()}


def _linking_files() -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name
            for name in subfolders
            if name not in SKIPPED_DIRS and not name.startswith(".") and "egg-info" not in name
        ]
        for name in files:
            path = Path(folder, name)
            if path.suffix in LINKING_SUFFIXES or name in LINKING_NAMES:
                found.append(path)
    return found


def test_every_link_to_a_record_leads_to_a_file():
    broken = []
    checked = 0
    for path in _linking_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for link in ADR_LINK.findall(line):
                # `docs/adr/NNNN-...` is written from the repository root, `adr/NNNN-...` from docs.
                target = ROOT / link if link.startswith("docs/") else ROOT / "docs" / link
                checked += 1
                if not target.is_file():
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {link}")
    assert checked, "no links to decision records found: the pattern is wrong"
    assert not broken, "links to records that do not exist:\n" + "\n".join(broken)
