"""The CLI as a user runs it: a subprocess on its own local store, never the runner's login."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "topology.yaml"


def silonet(datadir: Path, *args: str, columns: int = 200, stdin: int | None = subprocess.DEVNULL,
            config: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``silonet ARGS`` on the store in ``datadir`` (no SILONET_* of the runner's, no colour)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SILONET_") and k != "FORCE_COLOR"}
    base.update(SILONET_DATA_DIR=str(datadir), SILONET_CONFIG=str(config or datadir / "cli-config.json"),
                COLUMNS=str(columns), **env)
    return subprocess.run([sys.executable, "-m", "silonet.cli.main", *args], env=base, cwd=ROOT, stdin=stdin,
                          capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)


def seeded_store(factory: pytest.TempPathFactory, name: str) -> Path:
    """A local store with the example topology applied (copy it per test: ``copied``)."""
    datadir = factory.mktemp(name) / "data"
    p = silonet(datadir, "apply", "-f", str(EXAMPLE))
    assert p.returncode == 0, p.stderr
    return datadir


def copied(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "data"))
