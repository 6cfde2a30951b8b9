"""The fake CLIs keep their client keys in the test's folder: make it the secrets directory
(credentials references may point only there)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _secrets_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILONET_SECRETS_DIR", str(tmp_path))
