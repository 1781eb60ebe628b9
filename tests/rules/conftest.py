"""Fixtures shared by the rules tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rules.helpers import one_rule, write


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    root.mkdir()
    write(root / "a.rules.yaml", one_rule("amount > 100"))
    return root
