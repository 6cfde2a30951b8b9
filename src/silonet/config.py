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


def _positive_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # NaN too
        raise InvalidInput(field=name, rule=f"{raw!r}: a number of seconds above 0 expected")
    return value


def _switch(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(field=name, rule=f"{raw!r}: on or off (1/0, true/false, yes/no) expected")


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
    # A webhook delivery is retried until this long after its event, then failed (README, "Webhooks").
    webhook_retry_s: float = field(default_factory=lambda: _positive_number("SILONET_WEBHOOK_RETRY_S", 3600.0))
    # Off: this server sends no webhook (another replica does; tests that do not want it).
    webhook_dispatch: bool = field(default_factory=lambda: _switch("SILONET_WEBHOOK_DISPATCH", True))
    # The event stream keeps events at least this long and at least this many (GET /v1/events).
    events_keep_hours: int = field(default_factory=lambda: _positive_int("SILONET_EVENTS_KEEP_HOURS", 24))
    events_keep: int = field(default_factory=lambda: _positive_int("SILONET_EVENTS_KEEP", 100_000))
