"""The CLI's own settings: which server to talk to and with which token.

Kept in ``$XDG_CONFIG_HOME/silonet/config.json`` (``~/.config/...``), created 0600 in a
0700 directory: the token is a credential. Flags and environment (``--server``,
``SILONET_SERVER``, ``--token``, ``SILONET_TOKEN``) win over the file; without any token
the CLI falls back to ``SILONET_ADMIN_TOKEN`` (the server's own, when both run here).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from silonet.errors import InvalidInput


def path() -> Path:
    if env := os.environ.get("SILONET_CONFIG"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "silonet" / "config.json"


@dataclass(frozen=True)
class CliConfig:
    server: str | None = None
    token: str | None = None


def load() -> CliConfig:
    p = path()
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return CliConfig()
    except (OSError, ValueError) as err:
        raise InvalidInput(field="config", rule=f"{p}: unreadable ({err}); fix it or run `silonet logout`") from None
    if not isinstance(data, dict):
        raise InvalidInput(field="config", rule=f"{p}: expected a JSON object")
    return CliConfig(server=data.get("server") or None, token=data.get("token") or None)


def save(cfg: CliConfig) -> Path:
    """Write with 0600 from the first byte (never readable by others, not even briefly)."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"server": cfg.server, "token": cfg.token}, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return p


def forget() -> bool:
    p = path()
    if p.exists():
        p.unlink()
        return True
    return False


def resolve(server: str | None, token: str | None) -> CliConfig:
    """Flags/environment first, then the file, then SILONET_ADMIN_TOKEN for the token."""
    saved = load() if server is None or token is None else CliConfig()
    server = server or saved.server
    token = token or (saved.token if saved.server in (None, server) else None) or os.environ.get("SILONET_ADMIN_TOKEN")
    return CliConfig(server, token)
