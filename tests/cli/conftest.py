"""Fixtures of the CLI tests: a local store seeded with the example topology, copied per test
(a module that needs one store for all its tests defines its own ``datadir``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import copied, seeded_store


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seeded_store(tmp_path_factory, "seeded")


@pytest.fixture
def datadir(seeded_template: Path, tmp_path: Path) -> Path:
    return copied(seeded_template, tmp_path)
