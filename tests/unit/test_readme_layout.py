"""The README's Layout block names every module of lib/sluiceway, in its folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "lib" / "sluiceway"


def layout_block() -> str:
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def names_by_folder(block: str) -> dict[str, set[str]]:
    """Words of each folder's lines: a `  name/` line opens a folder, deeper lines continue it."""
    found: dict[str, set[str]] = {"": set()}
    folder = ""
    for line in block.splitlines():
        if match := re.match(r"^  (\w+)/", line):
            folder = match[1]
            found.setdefault(folder, set()).update(re.findall(r"\w+", line[match.end() :]))
        elif line.startswith("  ") and not line.startswith("   "):
            folder = ""
            found[""].update(re.findall(r"\w+", line))
        elif line.startswith("   "):
            found[folder].update(re.findall(r"\w+", line))
    return found


def test_every_module_is_on_the_map() -> None:
    listed = names_by_folder(layout_block())
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        folder = relative.parts[0] if len(relative.parts) > 1 else ""
        if path.stem == "__init__":
            continue
        if path.stem not in listed.get(folder, set()):
            missing.append(str(relative))
    assert not missing, f"README Layout does not name: {missing}"


def test_every_folder_on_the_map_exists() -> None:
    for folder in names_by_folder(layout_block()):
        assert folder == "" or (PACKAGE / folder).is_dir(), folder
