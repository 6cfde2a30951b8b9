"""A gateway's pinned host key (``management.host_key``): an OpenSSH public key line, or the
``SHA256:`` fingerprint of one. When set it is the only truth for that gateway: known_hosts and
trust on first use are not consulted, so an inventory alone is enough to reach it safely.

asyncssh checks it: a public key is the one trusted key (``known_hosts`` as the tuple of trusted,
CA and revoked keys), which also makes the key exchange ask for that key's type only; a fingerprint
leaves the trusted set empty, and the client's ``validate_host_public_key`` compares the offered
key's SHA256 fingerprint. Either way the offered key's fingerprint is kept for the refusal.
"""

from __future__ import annotations

from typing import Any

import asyncssh

from silonet.errors import DeviceError

FINGERPRINT = "SHA256:"


class HostKeyPin:
    """One connection attempt's check of ``host_key`` (a fresh one per attempt)."""

    def __init__(self, gateway: str, host_key: str) -> None:
        self.gateway = gateway
        text = host_key.strip()
        self.key: asyncssh.SSHKey | None = None
        if text.startswith(FINGERPRINT):
            self.fingerprint = text
        else:
            try:
                self.key = asyncssh.import_public_key(text)
            except (asyncssh.KeyImportError, ValueError) as err:
                raise DeviceError(gateway=gateway, reason=f"management.host_key is not an OpenSSH public key "
                                                          f"line or a SHA256: fingerprint: {err}") from None
            self.fingerprint = self.key.get_fingerprint("sha256")
        self.offered: str | None = None  # the fingerprint of the key the device offered, once it did

    def options(self) -> dict[str, Any]:
        """``asyncssh.connect`` arguments that enforce the pin. The trusted set is never empty-looking
        to asyncssh (an empty ``known_hosts`` would load ~/.ssh/known_hosts instead)."""
        trusted = [self.key] if self.key is not None else []
        return {"known_hosts": (trusted, [], []), "client_factory": self._client}

    def _client(self) -> asyncssh.SSHClient:
        pin = self

        class PinnedClient(asyncssh.SSHClient):
            def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
                """Asked only for a key outside the trusted set: a pinned key that differs is refused."""
                pin.offered = key.get_fingerprint("sha256")
                return pin.key is None and pin.offered == pin.fingerprint

        return PinnedClient()

    def refused(self, err: Exception) -> DeviceError:
        """The refusal, naming the gateway, the expected and the offered fingerprint."""
        if self.offered is not None:
            why = f"the device offered {self.offered}"
        elif self.key is not None and isinstance(err, asyncssh.KeyExchangeFailed):
            why = f"the device offers no {self.key.get_algorithm()} host key ({err.reason})"
        else:
            why = f"{err.reason if isinstance(err, asyncssh.Error) else err}"
        return DeviceError(gateway=self.gateway,
                           reason=f"host key mismatch: management.host_key is {self.fingerprint}, {why}")
