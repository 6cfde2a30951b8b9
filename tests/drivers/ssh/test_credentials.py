"""What the SSH driver offers a gateway, against a real SSH server on 127.0.0.1 (FakeCli): the key
its credentials reference names, read inside the fence, or nothing at all; a reference it cannot
use (a key asyncssh cannot parse, a reference outside the fence stored before it) is the
gateway's error, never a worker stuck at "connecting". The test folder is the secrets
directory (conftest)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from silonet.drivers.base import Health, wait_connected
from silonet.drivers.ssh.driver import SshDriver
from silonet.model import Gateway, rules
from silonet.model.entities import Management, Port
from tests.drivers.ssh.fakecli import FakeCli


def _gateway(cli: FakeCli, credentials: str | None) -> Gateway:
    return Gateway("gw-a", "198.18.0.1", Management("ssh", cli.address, "eos", credentials),
                   ports=(Port("p1"),))


async def _first_word(driver: SshDriver, timeout: float = 15.0) -> Health:
    """The driver's health once its first attempt ended (bounded: a stuck worker fails the test)."""
    deadline = time.monotonic() + timeout
    while driver.health().detail == "connecting":
        assert time.monotonic() < deadline, "the gateway still says 'connecting'"
        await asyncio.sleep(0.02)
    return driver.health()


def _attempt(cli: FakeCli, credentials: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[Health, int, bool]:
    """(health after the first attempt, sessions the server saw, whether the worker still runs)."""

    async def scenario() -> tuple[Health, int, bool]:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway(cli, credentials), on_change=lambda: None)
            await driver.start()
            try:
                health = await _first_word(driver)
                alive = driver._task is not None and not driver._task.done()
                return health, cli.sessions, alive
            finally:
                await driver.close()

    return asyncio.run(scenario())


def test_a_key_file_asyncssh_cannot_parse_is_the_gateways_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad_key"
    bad.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64 at all\n-----END OPENSSH PRIVATE KEY-----\n")
    bad.chmod(0o600)
    health, sessions, alive = _attempt(FakeCli(tmp_path), f"file:{bad}", monkeypatch)
    assert not health.connected and sessions == 0 and alive
    assert f"{bad} is not a private key silonet can use" in health.detail, health.detail


def test_a_stored_reference_outside_the_fence_fails_with_the_rule(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILONET_DB_PASSWORD", "pw-of-the-database")
    health, sessions, alive = _attempt(FakeCli(tmp_path), "env:SILONET_DB_PASSWORD", monkeypatch)
    assert not health.connected and sessions == 0 and alive
    assert health.detail.endswith(f"credentials: {rules.SECRET_ENV_RULE}"), health.detail
    assert "pw-of-the-database" not in health.detail


def test_the_service_users_default_keys_are_never_offered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key the server accepts, in the service user's ~/.ssh (default name and in ~/.ssh/config):
    a gateway without credentials does not get in with it; named by its reference, it does."""
    cli = FakeCli(tmp_path)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    cli._client.write_private_key(str(home / ".ssh" / "id_ed25519"))
    cli._client.write_private_key(str(home / ".ssh" / "gateways"))
    for key in ("id_ed25519", "gateways"):
        (home / ".ssh" / key).chmod(0o600)
    (home / ".ssh" / "config").write_text("Host *\n  IdentityFile ~/.ssh/gateways\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)

    health, sessions, _alive = _attempt(cli, None, monkeypatch)
    assert not health.connected and sessions == 0, health
    assert "permission denied" in health.detail.lower(), health.detail

    async def with_the_reference() -> None:  # the same key, named: the server takes it
        async with cli:
            driver = SshDriver(_gateway(cli, f"file:{cli.client_key}"), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
            finally:
                await driver.close()

    asyncio.run(with_the_reference())
