"""Credential references: silonet stores where a secret is, never the secret.

``file:<secrets dir>/key`` (or a bare path there): a private key, owned by the service's
user or root and readable by its owner only; ``env:SILONET_SECRET_<NAME>``: a password in
the manager's environment. Resolved at connect time, inside the fence only
(``drivers/secrets.py``), never logged, never returned by the API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from silonet.drivers import secrets
from silonet.errors import DeviceError
from silonet.model import rules


@dataclass(frozen=True)
class Secret:
    key_file: Path | None = None
    password: str | None = field(default=None, repr=False)
    key: asyncssh.SSHKey | None = field(default=None, repr=False)  # parsed from the checked descriptor

    def __repr__(self) -> str:  # never show the password, not even by accident
        return f"Secret(key_file={self.key_file}, password={'***' if self.password else None})"


def resolve(ref: str | None, gateway: str, base: Path | None = None) -> Secret:
    """What ``ref`` names, read now; a reference outside the fence (stored before it) or a key
    asyncssh cannot parse is this gateway's error, never an exception that stops its worker."""
    if not ref:
        return Secret()
    if ref.startswith("env:"):
        if (rule := rules.credentials_violation(ref, base or secrets.secrets_dir())) is not None:
            raise DeviceError(gateway=gateway, reason=f"credentials: {rule}")
        value = os.environ.get(ref[4:])
        if value is None:
            raise DeviceError(gateway=gateway, reason=f"credentials: environment variable {ref[4:]} is not set")
        return Secret(password=value)
    path = secrets.fenced_path(ref, gateway, base)
    data = secrets.read_secret(path, gateway)
    try:
        key = asyncssh.import_private_key(data)
    except Exception as err:  # KeyImportError (a ValueError), and on some garbage even re.error
        why = str(err) if isinstance(err, asyncssh.KeyImportError) else type(err).__name__  # fixed texts only
        raise DeviceError(gateway=gateway, reason=f"credentials: {path} is not a private key silonet can use "
                                                  f"(unencrypted OpenSSH or PEM): {why}") from None
    return Secret(key_file=path, key=key)
