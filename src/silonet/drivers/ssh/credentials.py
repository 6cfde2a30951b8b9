"""Credential references: silonet stores where a secret is, never the secret.

``file:/path/key`` (or a bare path): a private key, which must be readable by its owner
only; ``env:VAR``: a password in the manager's environment. Resolved at connect time,
never logged, never returned by the API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Secret:
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show the password, not even by accident
        return f"Secret(key_file={self.key_file}, password={'***' if self.password else None})"


def resolve(ref: str | None, gateway: str) -> Secret:
    from silonet.errors import DeviceError

    if not ref:
        return Secret()
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise DeviceError(gateway=gateway, reason=f"credentials: environment variable {ref[4:]} is not set")
        return Secret(password=value)
    path = Path(ref.removeprefix("file:")).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise DeviceError(gateway=gateway, reason=f"credentials: cannot read {path}: {err.strerror}") from None
    if mode & 0o077:
        raise DeviceError(gateway=gateway, reason=f"credentials: {path} must be readable by its owner only (0600)")
    return Secret(key_file=path)
