"""How the ``ssh`` driver checks a gateway's host key and tells a failed connection, against the
fake CLI over real SSH (127.0.0.1 only).

``management.host_key`` (a public key line or a ``SHA256:`` fingerprint) is the only truth for its
gateway: no known_hosts file is needed, and one that says otherwise is not asked. A failed
attempt is ``hard`` (``Health.hard``: the worker shows it at once) when retrying will not mend
it: a wrong host key, refused authentication, a refused connection, no known_hosts; a timeout
is not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from silonet.devices.vtepdb import free_port
from silonet.drivers.base import Health, wait_connected
from silonet.drivers.ssh import driver as ssh_driver
from silonet.drivers.ssh.driver import SshDriver
from silonet.model import Gateway
from silonet.model.entities import Management, Port
from tests.drivers.ssh.fakecli import HOST, FakeCli


def _gateway(address: str, key: Path, host_key: str | None = None, tofu: bool = False) -> Gateway:
    return Gateway("gw-a", "198.18.0.1",
                   Management(driver="ssh", address=address, dialect="eos", credentials=f"file:{key}",
                              trust_on_first_use=tofu, host_key=host_key),
                   ports=(Port("p1"),))


def _public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


async def _until(driver: SshDriver, check: Callable[[Health], bool], what: str, timeout: float = 10.0) -> Health:
    """Bounded wait for the driver's health to show ``check`` (its connection loop runs meanwhile)."""
    deadline = time.monotonic() + timeout
    while not check(health := driver.health()):
        assert time.monotonic() < deadline, f"{what}: the driver's health stayed {health}"
        await asyncio.sleep(0.02)
    return health


@pytest.fixture
def no_known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A known_hosts path with no file: a pinned gateway must not need one."""
    path = tmp_path / "no-such-known_hosts"
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(path))
    return path


@pytest.mark.parametrize("form", ["public key line", "fingerprint"])
def test_a_pinned_host_key_needs_no_known_hosts(form: str, tmp_path: Path, no_known_hosts: Path) -> None:
    cli = FakeCli(tmp_path, show={"terminal length 0": ""})

    async def scenario() -> None:
        async with cli:
            pin = (_public_line(cli.host_key) + " a-comment" if form == "public key line"
                   else cli.host_key.get_fingerprint("sha256"))
            driver = SshDriver(_gateway(cli.address, cli.client_key, pin), on_change=lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
                assert not driver.health().hard
            finally:
                await driver.close()
        assert not no_known_hosts.exists(), "nothing is recorded for a pinned gateway"

    asyncio.run(scenario())


def test_the_pin_wins_over_a_known_hosts_file_that_says_otherwise(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cli = FakeCli(tmp_path)

    async def scenario() -> None:
        async with cli:
            other = FakeCli(tmp_path / "other")
            other.port = cli.port
            cli.known_hosts.write_text(other.known_hosts_entry() + "\n")  # another key for this host and port
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway(cli.address, cli.client_key, _public_line(cli.host_key)), lambda: None)
            await driver.start()
            try:
                await wait_connected(driver)
            finally:
                await driver.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("form", ["public key line", "fingerprint"])
def test_a_wrong_pinned_key_is_hard_and_names_both_fingerprints(form: str, tmp_path: Path,
                                                                no_known_hosts: Path) -> None:
    cli = FakeCli(tmp_path)
    wrong = asyncssh.generate_private_key("ssh-ed25519")  # same type: the server is asked for it and offers its own

    async def scenario() -> None:
        async with cli:
            pin = _public_line(wrong) if form == "public key line" else wrong.get_fingerprint("sha256")
            driver = SshDriver(_gateway(cli.address, cli.client_key, pin), on_change=lambda: None)
            await driver.start()
            try:
                health = await _until(driver, lambda h: h.hard, "a wrong host key")
            finally:
                await driver.close()
            assert not health.connected and cli.sessions == 0
            assert "gw-a" in health.detail and "host key mismatch" in health.detail
            assert wrong.get_fingerprint("sha256") in health.detail, "the expected fingerprint"
            assert f"offered {cli.host_key.get_fingerprint('sha256')}" in health.detail, "the offered fingerprint"

    asyncio.run(scenario())


def test_a_pinned_key_of_a_type_the_server_lacks_is_hard(tmp_path: Path, no_known_hosts: Path) -> None:
    cli = FakeCli(tmp_path)  # an ed25519 host key only
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)

    async def scenario() -> None:
        async with cli:
            driver = SshDriver(_gateway(cli.address, cli.client_key, _public_line(rsa)), on_change=lambda: None)
            await driver.start()
            try:
                health = await _until(driver, lambda h: h.hard, "a pinned key of another type")
            finally:
                await driver.close()
            assert "host key mismatch" in health.detail and rsa.get_fingerprint("sha256") in health.detail
            assert "offers no ssh-rsa host key" in health.detail

    asyncio.run(scenario())


def test_a_refused_connection_is_hard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "known_hosts").write_text("")
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    key = tmp_path / "client_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    key.chmod(0o600)
    port = free_port()  # nothing listens there

    async def scenario() -> None:
        changes: list[Health] = []
        driver = SshDriver(_gateway(f"admin@{HOST}:{port}", key), lambda: changes.append(driver.health()))
        await driver.start()
        try:
            health = await _until(driver, lambda h: h.hard, "a refused connection")
        finally:
            await driver.close()
        assert not health.connected and f"{HOST}:{port}" in health.detail
        assert changes and changes[0].hard, "its worker is told at once"

    asyncio.run(scenario())


def test_refused_authentication_and_no_known_hosts_are_hard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = FakeCli(tmp_path)
    stranger = tmp_path / "stranger_key"  # a key the server does not authorize
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    stranger.chmod(0o600)

    async def scenario() -> None:
        async with cli:
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(cli.known_hosts))
            driver = SshDriver(_gateway(cli.address, stranger), on_change=lambda: None)
            await driver.start()
            try:
                health = await _until(driver, lambda h: h.hard, "refused authentication")
            finally:
                await driver.close()
            assert "permission denied" in health.detail.lower(), health.detail
            monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(tmp_path / "none"))
            driver = SshDriver(_gateway(cli.address, cli.client_key), on_change=lambda: None)
            await driver.start()
            try:
                health = await _until(driver, lambda h: h.hard, "no known_hosts and no host_key")
            finally:
                await driver.close()
            assert "no known_hosts file" in health.detail

    asyncio.run(scenario())


def test_a_connect_timeout_stays_soft(tmp_path: Path, no_known_hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that accepts and never speaks may be a slow boot: no reason to skip the grace."""
    monkeypatch.setattr(ssh_driver, "CONNECT_TIMEOUT_S", 0.2)
    key = tmp_path / "client_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    key.chmod(0o600)
    silent: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # held open, never written to

    async def scenario() -> None:
        server = await asyncio.start_server(accept, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        pin = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
        driver = SshDriver(_gateway(f"admin@{HOST}:{port}", key, pin), on_change=lambda: None)
        await driver.start()
        try:
            health = await _until(driver, lambda h: "timeout" in h.detail.lower() or "timed out" in h.detail.lower(),
                                  "a connection attempt that timed out")
            await _until(driver, lambda _h: len(silent) >= 2, "a second attempt")
            health = driver.health()
        finally:
            await driver.close()
            for w in silent:
                w.close()
            server.close()
            await server.wait_closed()
        assert not health.connected and not health.hard, health

    asyncio.run(scenario())
