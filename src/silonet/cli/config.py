"""The CLI's own settings: which server to talk to and with which token.

Kept in ``$XDG_CONFIG_HOME/silonet/config.json`` (``~/.config/...``), created 0600 in a
0700 directory: the token is a credential. Flags and environment (``--server``,
``SILONET_SERVER``, ``--token``, ``SILONET_TOKEN``) win over the file; without any token
the CLI falls back to ``SILONET_ADMIN_TOKEN`` for a server on this machine (loopback) only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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
    for key in ("server", "token"):
        if not isinstance(data.get(key) or "", str):
            raise InvalidInput(field="config", rule=f"{p}: {key} must be a string; fix it or run `silonet logout`")
    return CliConfig(server=data.get("server") or None, token=data.get("token") or None)


def save(cfg: CliConfig) -> Path:
    """Write with 0600 from the first byte (never readable by others, not even briefly): a
    private temporary file in the same directory, then renamed over the config."""
    p = path()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".config-", suffix=".tmp")  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"server": cfg.server, "token": cfg.token}, f, indent=2)
            f.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def forget() -> bool:
    p = path()
    if p.exists():
        p.unlink()
        return True
    return False


def check_server(server: str) -> None:
    """An http(s) URL with a host, or one error line naming --server (not a traceback later)."""
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as err:
        raise InvalidInput(field="--server", rule=f"{server!r} is not a URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(field="--server", rule=f"{server!r} must be http(s)://HOST[:PORT]")


def _loopback(server: str) -> bool:
    host = urlsplit(server).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def resolve(server: str | None, token: str | None) -> CliConfig:
    """Flags/environment first, then the file, then SILONET_ADMIN_TOKEN. A token goes only
    where it belongs: the saved one to the saved server, the admin's environment one to a
    server on this machine (loopback), never to whatever ``--server`` names."""
    saved = load() if server is None or token is None else CliConfig()
    server = server or saved.server
    if server is not None:
        check_server(server)
    if token is None and server is not None:
        if saved.token and saved.server == server:
            token = saved.token
        elif _loopback(server):
            token = os.environ.get("SILONET_ADMIN_TOKEN")
    return CliConfig(server, token)
