"""Settings from the environment (names are part of the contract in design.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from silonet.model import rules

DEFAULT_VNI_POOL = "10000-16777215"


def data_dir() -> Path:
    if env := os.environ.get("SILONET_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "silonet"


def lab_dir() -> Path:
    """Where labs keep their state, sockets and logs: the same from any working directory."""
    if env := os.environ.get("SILONET_LAB_DIR"):
        return Path(env)
    return data_dir() / "lab"


def database_url() -> str:
    if env := os.environ.get("SILONET_DATABASE_URL"):
        return env
    return f"sqlite:///{data_dir() / 'silonet.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=database_url)
    vni_pool: range = field(
        default_factory=lambda: rules.parse_pool(os.environ.get("SILONET_VNI_POOL", DEFAULT_VNI_POOL))
    )
    admin_token: str | None = field(default_factory=lambda: os.environ.get("SILONET_ADMIN_TOKEN"))
