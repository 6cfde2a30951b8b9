"""A write the switch refuses for a reference another writer made meanwhile: ovs-vtep learns a MAC
on a network silonet deletes, between the read the write was built on and its commit (a CI run
saw it once, right after a ping). When the switch changed since that read, the driver answers
``retry`` and the pass plans again, as on a TRY_AGAIN; when it reads as before, the refusal stands,
in the device's words. ``vtep-ctl`` is the other writer and the independent reader.

OVSDB: a job of the driver's holds its IDL (the hub leaves it alone), vtep-ctl adds the MAC, and
the write built on the old replica is sent. vtepctl over real OpenSSH: vtep-ctl's own read-commit
window cannot be timed from a test; a binding of another Physical_Switch in the same database (the
other member of a pair sharing one hardware_vtep) holds the same refusal as long as the test needs,
and the MAC is added between the driver's read and its write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from silonet.config import secrets_dir
from silonet.devices import sshgw
from silonet.devices.vtepdb import VtepDb
from silonet.drivers.base import ApplyResult, wait_connected
from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.drivers.ssh.driver import SshDriver
from silonet.errors import DeviceError
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ops import Bind, EnsureLogicalSwitch, RemoveLogicalSwitch, Unbind
from tests.functional.conftest import MISSING

pytestmark = pytest.mark.ovs
MAC = "00:00:5e:00:53:01"
DESIRED = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000})


def _share_with_another_switch(db: VtepDb) -> None:
    """Another switch's port on silonet's network: a reference silonet neither reads nor removes."""
    for args in (("add-ps", "ps2"), ("add-port", "ps2", "q1"), ("bind-ls", "ps2", "q1", "300", "cust-42")):
        db.ctl(*args)


async def _realized(driver: OvsdbDriver | SshDriver) -> None:
    """Started, connected, and holding DESIRED (read back)."""
    await driver.start()
    await wait_connected(driver, 20)
    await driver.apply(diff(DESIRED, (await driver.read()).owned))
    assert (await driver.read()).owned == DESIRED


def test_ovsdb_plans_again_when_a_mac_learned_meanwhile_refuses_the_delete(vtepdb: VtepDb) -> None:
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))
    remove = [Unbind("p1", 100), RemoveLogicalSwitch(5000)]

    async def scenario() -> tuple[ApplyResult, str]:
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await _realized(driver)

            def learned_meanwhile(idl: object) -> object:
                vtepdb.ctl("add-ucast-local", "cust-42", MAC, "198.18.0.1")
                return driver._apply(idl, remove)  # type: ignore[arg-type]

            moved = await asyncio.wrap_future(driver._link.submit(learned_meanwhile))
            assert (await driver.read()).local_macs == {5000: frozenset({MAC})}
            _share_with_another_switch(vtepdb)
            with pytest.raises(DeviceError) as refused:  # the replica did not move: the refusal stands
                await driver.apply(remove)
            vtepdb.ctl("unbind-ls", "ps2", "q1", "300")
            assert not (await driver.apply(diff(GatewayState(), (await driver.read()).owned))).retry
            assert (await driver.read()).owned == GatewayState()
            return moved, refused.value.fields["reason"]
        finally:
            await driver.close()

    moved, reason = asyncio.run(scenario())
    assert moved == ApplyResult(0, retry=True)
    assert reason.startswith("transaction error: ") and "referential integrity violation" in reason, reason
    assert vtepdb.ctl("list-ls").split() == [] and vtepdb.ctl("list", "Ucast_Macs_Local").strip() == ""


def test_vtepctl_plans_again_only_when_the_switch_changed_since_the_batchs_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if MISSING or sshgw.available():
        pytest.skip(f"missing here: {MISSING or sshgw.available()}")
    db = VtepDb(tmp_path / "vtep", ports=("p1",)).start()
    ssh = sshgw.SshGateway(tmp_path / "sshd", db, secrets_dir())
    try:
        ssh.start()
        monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(ssh.known_hosts))
        gw = Gateway("ps1", "198.18.0.1", Management("ssh", ssh.address, "vtepctl", ssh.credentials),
                     ports=(Port("p1"),))

        async def scenario() -> None:
            driver = SshDriver(gw, lambda: None)
            try:
                await _realized(driver)
                _share_with_another_switch(db)
                owned = (await driver.read()).owned
                assert owned == DESIRED, "another switch's binding is not this gateway's"
                db.ctl("add-ucast-local", "cust-42", MAC, "198.18.0.1")  # learned after the read, before the write
                empty = diff(GatewayState(), owned)
                moved = await driver.apply(empty)
                assert moved.retry and moved.applied == 0, moved
                assert (await driver.read()).local_macs == {5000: frozenset({MAC})}
                with pytest.raises(DeviceError) as refused:  # the same reading: the refusal stands
                    await driver.apply(diff(GatewayState(), (await driver.read()).owned))
                reason = refused.value.fields["reason"]
                assert "referential integrity violation" in reason and reason.startswith("device refused"), reason
                assert db.ctl("list-bindings", db.name, "p1").split() == ["0100", "cust-42"]  # nothing written
                db.ctl("unbind-ls", "ps2", "q1", "300")
                done = await driver.apply(diff(GatewayState(), (await driver.read()).owned))
                assert not done.retry
                assert (await driver.read()).owned == GatewayState()
            finally:
                await driver.close()

        asyncio.run(scenario())
        assert db.ctl("list-ls").split() == []
        assert db.ctl("list-bindings", db.name, "p1").split() == []
    finally:
        ssh.stop()
        db.stop()


def test_ovsdb_plans_again_when_another_writer_took_the_free_vlan_of_a_new_switch(vtepdb: VtepDb) -> None:
    """A new switch is a raw insert (``handlers.NewSwitch``): its UUID is the server's, so whether the
    free VLAN went to it is told by the switch the port's binding names after the read-back."""
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))
    attach = [EnsureLogicalSwitch(6000, "cust-43"), Bind("p1", 200, 6000)]

    async def scenario() -> tuple[ApplyResult, ApplyResult]:
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await _realized(driver)

            def taken_meanwhile(idl: object) -> object:
                vtepdb.ctl("add-ls", "theirs", "--", "bind-ls", "ps1", "p1", "200", "theirs")
                return driver._apply(idl, attach)  # type: ignore[arg-type]

            raced = await asyncio.wrap_future(driver._link.submit(taken_meanwhile))
            free = await driver.apply([EnsureLogicalSwitch(6001, "cust-44"), Bind("p1", 201, 6001)])
            return raced, free
        finally:
            await driver.close()

    raced, free = asyncio.run(scenario())
    assert raced == ApplyResult(0, retry=True)  # the insert mutation left their binding: plan again
    assert free == ApplyResult(2)
    bindings = dict(line.split() for line in vtepdb.ctl("list-bindings", "ps1", "p1").splitlines())
    assert bindings == {"0100": "cust-42", "0200": "theirs", "0201": "cust-44"}, bindings
    assert vtepdb.ctl("get", "Logical_Switch", "cust-44", "tunnel_key", "other_config", "replication_mode",
                      "description").split("\n")[:4] == ["6001", '{silonet_managed="true"}', "source_node",
                                                         '"silonet network cust-44 (VNI 6001)"']


def test_ovsdb_never_replaces_or_removes_a_binding_another_writer_made_after_the_plan(vtepdb: VtepDb) -> None:
    """The plan is made on the device as the pass read it; the write is built on the replica as it
    stands when the job runs, which may hold a binding another writer made in between (a hub reads
    a calm device's changes within ``QUIET_S``). A VLAN the plan took for free, or for silonet's to
    remove, that the replica now shows bound to someone else's switch is left to them: the bind goes
    as an insert mutation (the pass plans again), the unbind is skipped."""
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))
    planned = [EnsureLogicalSwitch(6000, "cust-43"), Bind("p1", 200, 6000)]  # VLAN 200 was free when read

    async def until_read(driver: OvsdbDriver, vlan: int) -> None:
        for _ in range(200):  # bounded: 10 s
            if ("p1", vlan) in (await driver.read()).facts.foreign_bindings:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the replica never showed the foreign binding of VLAN {vlan}")

    async def scenario() -> tuple[ApplyResult, ApplyResult]:
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await _realized(driver)
            vtepdb.ctl("add-ls", "theirs", "--", "bind-ls", "ps1", "p1", "200", "theirs")
            await until_read(driver, 200)
            bound = await driver.apply(planned)
            vtepdb.ctl("add-ls", "theirs2", "--", "unbind-ls", "ps1", "p1", "100",  # VLAN 100 was silonet's
                       "--", "bind-ls", "ps1", "p1", "100", "theirs2")
            await until_read(driver, 100)
            unbound = await driver.apply([Unbind("p1", 100)])
            return bound, unbound
        finally:
            await driver.close()

    bound, unbound = asyncio.run(scenario())
    assert bound == ApplyResult(0, retry=True)  # their binding stayed: plan again
    assert unbound == ApplyResult(1)
    bindings = dict(line.split() for line in vtepdb.ctl("list-bindings", "ps1", "p1").splitlines())
    assert bindings == {"0100": "theirs2", "0200": "theirs"}, bindings


def test_ovsdb_read_of_a_device_that_went_away_fails_instead_of_giving_the_replica_of_before(
        vtepdb: VtepDb) -> None:
    """The device stops after a read: its connection's end waits in the socket (a calm hub turns the
    link within ``QUIET_S``). The next read has the link turned first (``Link.unread``), and a job on
    a link that is no longer connected fails: the IDL keeps the rows of before until it resyncs, and
    a pass must not call a gone device realized from them."""
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), ports=(Port("p1"),))

    async def scenario() -> str:
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await _realized(driver)
            vtepdb.stop()
            try:
                actual = await driver.read()
            except DeviceError as err:
                return str(err)
            raise AssertionError(f"a gone device read as {actual.owned}")
        finally:
            await driver.close()

    assert "ps1" in asyncio.run(scenario())
