"""Settings from the environment (the names are a contract: README, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from silonet.errors import InvalidInput
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


def secrets_dir() -> Path:
    """The one directory credentials references may point into (``rules.credentials_violation``);
    absolute, so the fence is a plain prefix check."""
    env = os.environ.get(rules.SECRETS_SETTING)
    return Path(os.path.abspath(env or data_dir() / "secrets"))


def database_url() -> str:
    if env := os.environ.get("SILONET_DATABASE_URL"):
        return env
    return f"sqlite:///{data_dir() / 'silonet.db'}"


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise InvalidInput(field=name, rule=f"{raw!r}: a whole number of at least 1 expected")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=database_url)
    vni_pool: range = field(
        default_factory=lambda: rules.parse_pool(os.environ.get("SILONET_VNI_POOL", DEFAULT_VNI_POOL))
    )
    admin_token: str | None = field(default_factory=lambda: os.environ.get("SILONET_ADMIN_TOKEN"))
    secrets_dir: Path = field(default_factory=secrets_dir)
    # Bodies past this answer 413 before they are parsed (64 MiB: an apply of 1,000 gateways fits).
    max_body_bytes: int = field(default_factory=lambda: _positive_int("SILONET_MAX_BODY_BYTES", 64 * 2**20))
    # ``?wait=`` requests one token may have in flight; more answer 429.
    max_waits_per_token: int = field(default_factory=lambda: _positive_int("SILONET_MAX_WAITS_PER_TOKEN", 32))
