"""The lease fence on real devices: a write planned before a successor's write is refused by the
device itself, not by the writer's clock (docs/architecture.md, "Leases and the epoch"), with
vtep-ctl as the independent reader of what the device holds.

Deterministic, at the driver level: an OVSDB replica whose IDL has not seen the successor's write
(its hub thread is held while the successor writes) and an SSH vtepctl session built on a read from
before it. ``test_fencing_serve.py`` does the same with two ``silonet serve`` processes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from silonet.config import secrets_dir
from silonet.devices import sshgw
from silonet.devices.vtepdb import VtepDb
from silonet.drivers.base import EPOCH_KEY, Fence, wait_connected
from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.drivers.ovsdb.handlers import device_epoch
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import Fenced
from silonet.model import Gateway, Management, Port
from silonet.plan.ops import Bind, EnsureLogicalSwitch
from tests.functional.conftest import MISSING

pytestmark = pytest.mark.ovs
PORTS = (Port("p1"), Port("p2"))


def device_epoch_by_ctl(db: VtepDb) -> str:
    """The key as vtep-ctl reads it (the independent reader)."""
    return db.ctl("get", "Physical_Switch", db.name, f'other_config:"{EPOCH_KEY}"').strip().strip('"')


def bindings(db: VtepDb, port: str) -> list[str]:
    return db.ctl("list-bindings", db.name, port).split()


def test_ovsdb_refuses_a_write_planned_on_a_replica_read_before_the_successors_write(vtepdb: VtepDb) -> None:
    """Replica a (epoch 1) plans on its IDL's replica; before its transaction leaves, a successor
    (epoch 2) writes. a's replica still shows epoch 1, so no local check can refuse: its
    transaction's ``wait`` on other_config fails on the server (TRY_AGAIN), and the re-read shows
    epoch 2, so the driver says ``Fenced``. The device holds the successor's write and epoch only.

    The successor is vtep-ctl writing what a fenced replica writes (its binding and its epoch in
    one transaction): while a's job runs its hub leaves a's IDL alone, and a second driver would
    wait for a free job worker of the same process."""
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=PORTS)
    planned_on: list[int | None] = []

    async def scenario() -> BaseException | None:
        a = OvsdbDriver(gw, lambda: None)
        await a.start()
        try:
            await wait_connected(a, 20)
            await a.apply([EnsureLogicalSwitch(5000, "cust-42")], Fence(1, "replica-a"))

            def stalled(idl: object) -> object:
                """A job of a's: the hub does not run a's IDL meanwhile, so its replica stays as it was."""
                planned_on.append(device_epoch(a._switch(idl)))
                vtepdb.ctl("bind-ls", vtepdb.name, "p1", "100", "cust-42", "--", "set", "Physical_Switch",
                           vtepdb.name, f'other_config:"{EPOCH_KEY}"=2')
                return a._apply(idl, [Bind("p2", 200, 5000)], Fence(1, "replica-a"))  # type: ignore[arg-type]

            try:
                await asyncio.wrap_future(a._link.submit(stalled))
            except Fenced as err:
                return err
            return None
        finally:
            await a.close()

    refused = asyncio.run(scenario())
    assert planned_on == [1]  # a's own check passed: only the device could refuse
    assert isinstance(refused, Fenced), refused
    assert (refused.fields["epoch"], refused.fields["device"]) == (1, 2)
    assert bindings(vtepdb, "p1") == ["0100", "cust-42"]  # the successor's write
    assert bindings(vtepdb, "p2") == []  # a's late write: refused, all of it
    assert device_epoch_by_ctl(vtepdb) == "2"


def test_vtepctl_session_refuses_a_batch_built_on_a_read_before_the_successors_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vtepctl dialect's fence.j2 over real OpenSSH and vtep-ctl: a's batch (epoch 1, read
    when the switch held 1) reaches the switch after b wrote epoch 2; its ``wait-until`` never
    holds, vtep-ctl gives up at its --timeout having written nothing, and the driver, reading the
    epoch again, says ``Fenced``."""
    if MISSING or sshgw.available():
        pytest.skip(f"missing here: {MISSING or sshgw.available()}")
    db = VtepDb(tmp_path / "vtep", ports=("p1", "p2")).start()
    ssh = sshgw.SshGateway(tmp_path / "sshd", db, secrets_dir())
    try:
        ssh.start()
        monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(ssh.known_hosts))
        gw = Gateway("ps1", "198.18.0.1", Management("ssh", ssh.address, "vtepctl", ssh.credentials), ports=PORTS)

        async def scenario() -> Fenced:
            a, b = SshDriver(gw, lambda: None), SshDriver(gw, lambda: None)
            await a.start()
            await b.start()
            try:
                await wait_connected(a, 20)
                await wait_connected(b, 20)
                await a.read()
                await a.apply([EnsureLogicalSwitch(5000, "cust-42")], Fence(1, "replica-a"))
                assert (await a.read()).owned.logical_switches.keys() == {5000} and a.epoch == 1
                await b.read()
                await b.apply([Bind("p1", 100, 5000)], Fence(2, "replica-b"))
                with pytest.raises(Fenced) as refused:  # a's last read said 1: the batch is sent
                    await a.apply([Bind("p2", 200, 5000)], Fence(1, "replica-a"))
                return refused.value
            finally:
                await a.close()
                await b.close()

        refused = asyncio.run(scenario())
        assert (refused.fields["epoch"], refused.fields["device"]) == (1, 2)
        assert bindings(db, "p1") == ["0100", "cust-42"]
        assert bindings(db, "p2") == []
        assert device_epoch_by_ctl(db) == "2"
    finally:
        ssh.stop()
        db.stop()
