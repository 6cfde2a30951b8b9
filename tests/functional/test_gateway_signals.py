"""What an operator sees of a gateway in trouble, under a real Reconciler with short backoffs:
one WARNING line naming it when it becomes unreachable, however often the worker retries, and
one INFO line when it recovers (``reconcile/transitions.py``); a first connection that fails
for good (refused, a wrong host key) is ``failed`` at once, while a slow one stays ``pending``
through the first-connect grace (``Health.hard``).

The grace is set to an hour here: a gateway shown ``failed`` was not waited out. Every wait is
bounded and counts the worker's passes, never the clock."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import secrets_dir
from silonet.devices import sshgw
from silonet.devices.vtepdb import VtepDb, free_port
from silonet.devices.vtepdb import available as ovs_missing
from silonet.drivers.ovsdb.hub import Resyncs, hubs
from silonet.drivers.ssh import driver as ssh_driver
from silonet.reconcile import Reconciler
from silonet.reconcile import worker as worker_module
from silonet.service import Manager
from tests.conftest import ADMIN

pytestmark = pytest.mark.ovs
LOGGER = "silonet.gateway"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Retries every 0.2 s; no first-connect grace that could end by itself during a test."""
    monkeypatch.setattr(worker_module, "BACKOFF_MAX_S", 0.2)
    monkeypatch.setattr(worker_module, "CONNECT_GRACE_S", 3600.0)
    caplog.set_level(logging.INFO, logger=LOGGER)


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@contextmanager
def _serving(manager: Manager, management: dict[str, Any]) -> Iterator[tuple[TestClient, Reconciler]]:
    """The API with a reconciler, and gateway gw-a (port p1) managed as ``management`` says."""
    rec = Reconciler(manager.runtime, period=2.0, poll=0.2)
    with TestClient(create_app(manager, rec), headers=ADMIN) as client:
        r = client.post("/v1/gateways", json={"name": "gw-a", "vtep_ip": "198.18.0.1", "management": management,
                                              "ports": [{"name": "p1"}]})
        assert r.status_code == 201, r.text
        yield client, rec


def _errors(rec: Reconciler) -> int:
    """Failed passes the worker recorded for gw-a (each one a retry after the first)."""
    tally = rec.metrics.gateways.get("gw-a")
    return tally.errors if tally is not None else 0


def _status(client: TestClient) -> dict[str, Any]:
    return client.get("/v1/gateways/gw-a/status").json()


def _client_key(name: str) -> str:
    """A client key in the secrets directory (credentials may point nowhere else)."""
    path = secrets_dir() / name
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
    path.chmod(0o600)
    return f"file:{path}"


def _refused_then_recovered(client: TestClient, rec: Reconciler, caplog: pytest.LogCaptureFixture,
                            serve: Callable[[], object], refused: str) -> None:
    _until(lambda: _errors(rec) >= 4, "the worker retried the refused gateway 3 times")
    st = _status(client)
    assert st["state"] == "failed" and st["reachable"] is False and refused in st["last_error"], st
    warnings = _lines(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("gateway gw-a unreachable: ") and refused in warnings[0], warnings
    assert _lines(caplog, logging.INFO) == []
    serve()
    _until(lambda: _status(client)["state"] == "realized", "the gateway realized once its server listens")
    recovered = _lines(caplog, logging.INFO)
    assert len(recovered) == 1 and recovered[0].startswith("gateway gw-a recovered: reachable"), recovered
    assert sum("unreachable" in w for w in _lines(caplog, logging.WARNING)) == 1


def test_a_refused_ovsdb_gateway_warns_once_and_recovers_in_one_info_line(
        manager: Manager, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if missing := ovs_missing():
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing})")
    port = free_port()  # nothing listens there yet
    db = VtepDb(tmp_path / "gw-a", name="gw-a", port=port)
    try:
        with _serving(manager, {"driver": "ovsdb", "address": f"tcp:127.0.0.1:{port}"}) as (client, rec):
            _refused_then_recovered(client, rec, caplog, db.start, "Connection refused")
    finally:
        db.stop()


@pytest.mark.root
def test_a_refused_ssh_gateway_warns_once_and_recovers_in_one_info_line(
        manager: Manager, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    if missing := ovs_missing() or sshgw.available():
        pytest.skip(f"missing here: {missing}")
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))  # none yet: trusted on first use
    db = VtepDb(tmp_path / "vtep", name="gw-a").start()
    sshd = sshgw.SshGateway(tmp_path / "sshd", db, secrets_dir())
    management = {"driver": "ssh", "dialect": "vtepctl", "address": sshd.address, "trust_on_first_use": True,
                  "credentials": _client_key(sshd.client_key.name)}  # where sshd's own key will be
    try:
        with _serving(manager, management) as (client, rec):
            _refused_then_recovered(client, rec, caplog, sshd.start, "Connect call failed")
    finally:
        sshd.stop()
        db.stop()


@pytest.mark.root
def test_a_wrong_host_key_fails_the_first_connection_at_once(
        manager: Manager, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if missing := ovs_missing() or sshgw.available():
        pytest.skip(f"missing here: {missing}")
    db = VtepDb(tmp_path / "vtep", name="gw-a").start()
    sshd = sshgw.SshGateway(tmp_path / "sshd", db, secrets_dir())
    wrong = asyncssh.generate_private_key("ssh-ed25519")
    try:
        sshd.start()
        offered = asyncssh.read_public_key(str(sshd.host_key) + ".pub").get_fingerprint("sha256")
        management = {"driver": "ssh", "dialect": "vtepctl", "address": sshd.address,
                      "credentials": sshd.credentials, "host_key": wrong.export_public_key().decode().strip()}
        with _serving(manager, management) as (client, rec):
            _until(lambda: _status(client)["state"] == "failed", "the gateway failed")
            st = _status(client)
            assert st["reachable"] is False and "host key mismatch" in st["last_error"], st
            assert wrong.get_fingerprint("sha256") in st["last_error"] and offered in st["last_error"]
            _until(lambda: _errors(rec) >= 3, "the worker retried")
            warnings = _lines(caplog, logging.WARNING)
            assert len(warnings) == 1 and "gateway gw-a unreachable: " in warnings[0], warnings
            assert "host key mismatch" in warnings[0]
    finally:
        sshd.stop()
        db.stop()


def test_a_first_connection_that_times_out_stays_pending(
        manager: Manager, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that accepts and never speaks (a slow boot, a loaded switch) is waited for."""
    monkeypatch.setattr(ssh_driver, "CONNECT_TIMEOUT_S", 0.2)
    monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        management = {"driver": "ssh", "dialect": "vtepctl", "address": f"root@127.0.0.1:{port}",
                      "trust_on_first_use": True, "credentials": _client_key(f"silent-{port}")}
        with _serving(manager, management) as (client, rec):
            def tried_after_timeouts() -> bool:
                worker, tally = rec.workers.get("gw-a"), rec.metrics.gateways.get("gw-a")
                return (worker is not None and tally is not None and tally.passes >= 6
                        and "timeout" in worker.driver.health().detail.lower())

            _until(tried_after_timeouts, "the worker's passes while the driver's connection attempts time out")
            assert not rec.workers["gw-a"].driver.health().hard
            st = _status(client)
            assert st["state"] == "pending" and st["last_error"] is None and _errors(rec) == 0, st
    assert _lines(caplog, logging.WARNING) == []


class _Holder:
    """Whoever holds the only resync slot until the test gives it back."""

    def wake(self) -> None:
        pass


def test_a_gateway_waiting_its_turn_to_connect_is_pending_past_the_grace(
        manager: Manager, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections are paced (``hub.Resyncs``): a gateway queued behind others has not failed, however
    long the queue (a thousand gateways started together logged 814 "unreachable" warnings). The
    first connection's grace starts when its turn comes; it then connects and realizes, silently."""
    if missing := ovs_missing():
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing})")
    grace = 1.0  # long enough for the link to fetch the schema and queue before it ends
    monkeypatch.setattr(worker_module, "CONNECT_GRACE_S", grace)
    slots = Resyncs(1)
    assert slots.take(_Holder())
    monkeypatch.setattr(hubs(), "resyncs", slots)
    db = VtepDb(tmp_path / "gw-a", name="gw-a").start()
    try:
        with _serving(manager, {"driver": "ovsdb", "address": db.remote}) as (client, rec):
            _until(lambda: slots.waiting == 1, "the gateway's link queued for a resync slot")
            queued_at = time.monotonic()
            _until(lambda: time.monotonic() - queued_at > 3 * grace, "three graces in the queue")
            st = _status(client)
            assert st["state"] == "pending" and st["last_error"] is None and _errors(rec) == 0, st
            slots.give()
            _until(lambda: _status(client)["reachable"] is True, "the gateway connected once its turn came")
    finally:
        db.stop()
    assert _lines(caplog, logging.WARNING) == []
