"""The README's contract table is the contract: one source, checked."""

from pathlib import Path

import pytest

from sluiceway.contract import contract_markdown

pytestmark = pytest.mark.unit


def test_readme_shows_the_contract_as_declared_in_code():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert contract_markdown() in readme
