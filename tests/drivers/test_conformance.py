"""One contract, every driver: the same tests run against the in-memory driver, the ovsdb driver
(a real ovsdb-server) and the ssh driver with the vtepctl dialect (a real sshd on loopback whose
sessions run vtep-ctl on a real ovsdb-server), the way napalm's shared getter tests run per
driver. What each driver must do is what ``plan.apply_ops`` says a device holds after a batch,
and refuse a batch under an older lease epoch than the device holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from silonet.config import secrets_dir
from silonet.devices import sshgw
from silonet.devices.vtepdb import VtepDb
from silonet.devices.vtepdb import available as ovs_missing
from silonet.drivers import Driver, registry
from silonet.drivers.base import Fence, wait_connected
from silonet.drivers.memory import FABRIC
from silonet.errors import DeviceError, Fenced
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, apply_ops, diff
from silonet.plan.ops import Bind, EnsureLogicalSwitch, Unbind

PORTS = ("p1", "p2", "p48")
DESIRED = GatewayState(
    {5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2", "198.18.0.3"})),
     5001: LogicalSwitch(5001, "cust-43", frozenset({"198.18.0.2"}))},
    {("p1", 100): 5000, ("p1", 101): 5001, ("p48", 0): 5000},
    {(5000, "02:00:00:00:00:0b"): "198.18.0.2"},
)


@dataclass
class Peer:
    """A device behind one driver, and the device's own hands (what its operator could do)."""

    gateway: Gateway
    foreign_switch: Callable[[str, int], None]  # name, VNI: a logical switch silonet did not make
    foreign_binding: Callable[[str, int, str], None]  # port, VLAN, their switch
    break_device: Callable[[], None]  # from now on the device cannot answer


def _memory(tmp_path: Path) -> Iterator[Peer]:
    address = f"memory:conformance-{tmp_path.name}"
    device = FABRIC.device(address)
    gw = Gateway("ps1", "198.18.0.1", Management("memory", address), ports=tuple(Port(p) for p in PORTS))

    def unreachable() -> None:
        device.unreachable = "powered off by the test"

    yield Peer(gw, lambda name, vni: device.foreign_vnis.__setitem__(vni, name),
               lambda port, vlan, name: device.foreign_bindings.__setitem__((port, vlan), name), unreachable)
    FABRIC.forget(address)


def _vtep_hands(db: VtepDb) -> tuple[Callable[[str, int], None], Callable[[str, int, str], None]]:
    def switch(name: str, vni: int) -> None:
        db.ctl("add-ls", name, "--", "set", "Logical_Switch", name, f"tunnel_key={vni}")

    def binding(port: str, vlan: int, name: str) -> None:
        db.ctl("bind-ls", db.name, port, str(vlan), name)

    return switch, binding


def _ovsdb(tmp_path: Path) -> Iterator[Peer]:
    if (missing := ovs_missing()) is not None:
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing}); ./run test installs it")
    db = VtepDb(tmp_path / "ovsdb", ports=PORTS).start()
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", db.remote), ports=tuple(Port(p) for p in PORTS))
    try:
        yield Peer(gw, *_vtep_hands(db), db.stop)
    finally:
        db.stop()


def _ssh_vtepctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    if (missing := ovs_missing() or sshgw.available()) is not None:
        pytest.skip(f"missing here: {missing}; ./run test installs it (and CI runs as root)")
    db = VtepDb(tmp_path / "vtep", ports=PORTS).start()
    ssh = sshgw.SshGateway(tmp_path / "sshd", db, secrets_dir())
    try:
        ssh.start()
        monkeypatch.setenv("SILONET_SSH_KNOWN_HOSTS", str(ssh.known_hosts))
        gw = Gateway("ps1", "198.18.0.1", Management("ssh", ssh.address, "vtepctl", ssh.credentials),
                     ports=tuple(Port(p) for p in PORTS))
        yield Peer(gw, *_vtep_hands(db), db.stop)  # the switch's database gone: vtep-ctl fails on it
    finally:
        ssh.stop()
        db.stop()


@pytest.fixture(params=["memory", "ovsdb", "ssh-vtepctl"])
def peer(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Peer]:
    if request.param == "memory":
        yield from _memory(tmp_path)
    elif request.param == "ovsdb":
        yield from _ovsdb(tmp_path)
    else:
        yield from _ssh_vtepctl(tmp_path, monkeypatch)


def _session(peer: Peer, body: Callable[[Driver], object]) -> None:
    async def main() -> None:
        drv = registry(peer.gateway.management.driver)(peer.gateway, lambda: None)
        await drv.start()
        try:
            await wait_connected(drv, 20)
            await body(drv)  # type: ignore[misc]
        finally:
            await drv.close()

    asyncio.run(main())


def test_apply_then_read_back_is_what_the_model_says(peer: Peer) -> None:
    async def body(drv: Driver) -> None:
        empty = await drv.read()
        assert empty.owned == GatewayState()
        assert empty.facts.ports is None or set(PORTS) <= empty.facts.ports
        ops = diff(DESIRED, empty.owned)
        assert (await drv.apply(ops)).applied == len(ops)
        back = await drv.read()
        assert back.owned == apply_ops(empty.owned, ops) == DESIRED

    _session(peer, body)


def test_applying_again_changes_nothing_and_removal_empties(peer: Peer) -> None:
    async def body(drv: Driver) -> None:
        await drv.apply(diff(DESIRED, GatewayState()))
        back = await drv.read()
        assert diff(DESIRED, back.owned) == []
        assert (await drv.apply([])).applied == 0
        # the same facts stated again (ensure an existing switch, bind what is bound) hold still
        await drv.apply([EnsureLogicalSwitch(5000, "cust-42"), Bind("p1", 100, 5000)])
        assert (await drv.read()).owned == DESIRED
        # a change in place: rebind a VLAN to the other VNI, then unbind it
        await drv.apply([Bind("p1", 100, 5001)])
        assert (await drv.read()).owned.bindings[("p1", 100)] == 5001
        await drv.apply([Unbind("p1", 100)])
        assert ("p1", 100) not in (await drv.read()).owned.bindings
        now = (await drv.read()).owned
        await drv.apply(diff(GatewayState(), now))
        assert (await drv.read()).owned == GatewayState()

    _session(peer, body)


def test_foreign_rows_are_reported_and_never_touched(peer: Peer) -> None:
    peer.foreign_switch("theirs", 7000)
    peer.foreign_binding("p2", 200, "theirs")

    async def body(drv: Driver) -> None:
        first = await drv.read()
        assert first.owned == GatewayState()  # not silonet's: not in its state
        assert first.facts.foreign_vnis == {7000: "theirs"}
        assert first.facts.foreign_bindings == {("p2", 200): "theirs"}
        await drv.apply(diff(DESIRED, first.owned))
        mid = await drv.read()
        assert mid.owned == DESIRED
        await drv.apply(diff(GatewayState(), mid.owned))  # silonet removes all it owns
        last = await drv.read()
        assert last.owned == GatewayState()
        assert last.facts.foreign_vnis == {7000: "theirs"}  # theirs stays
        assert last.facts.foreign_bindings == {("p2", 200): "theirs"}

    _session(peer, body)


def test_a_device_that_cannot_answer_is_a_device_error_naming_the_gateway(peer: Peer) -> None:
    async def body(drv: Driver) -> None:
        await drv.read()
        peer.break_device()
        deadline = asyncio.get_running_loop().time() + 20
        while True:  # a driver may notice at its next request or through its connection
            try:
                await drv.read()
            except DeviceError as err:
                assert err.fields["gateway"] == "ps1" and err.fields["reason"]
                break
            assert asyncio.get_running_loop().time() < deadline, "the broken device still answers"
            await asyncio.sleep(0.1)
        with pytest.raises(DeviceError):
            await drv.apply(diff(DESIRED, GatewayState()))

    _session(peer, body)


def test_a_write_under_an_older_lease_epoch_is_refused_by_the_device(peer: Peer) -> None:
    """The lease fence (``drivers.base.Fence``): a write under epoch 2 lands and leaves its epoch on
    the device; a write under epoch 1 after it is refused (``Fenced``, naming both epochs) and
    writes nothing; the same epoch again, or a higher one, lands; an unfenced write still lands."""

    async def body(drv: Driver) -> None:
        assert drv.fences, f"{drv.name}: every driver of this suite carries the epoch to its device"
        await drv.read()
        await drv.apply([EnsureLogicalSwitch(5000, "cust-42")], Fence(2, "replica-b"))
        before = (await drv.read()).owned
        with pytest.raises(Fenced) as refused:
            await drv.apply([Bind("p1", 100, 5000)], Fence(1, "replica-a"))
        assert {k: refused.value.fields[k] for k in ("gateway", "epoch", "device")} == {
            "gateway": "ps1", "epoch": 1, "device": 2}
        assert "lease epoch 2" in refused.value.fields["reason"]
        assert (await drv.read()).owned == before  # nothing of the refused batch was written
        await drv.apply([Bind("p1", 100, 5000)], Fence(2, "replica-b"))
        await drv.read()
        await drv.apply([Bind("p1", 101, 5000)], Fence(3, "replica-c"))
        await drv.read()
        with pytest.raises(Fenced):
            await drv.apply([Unbind("p1", 100)], Fence(2, "replica-b"))
        await drv.apply([Bind("p2", 7, 5000)])  # no lease (a tool, a test): the device's epoch is not asked
        assert (await drv.read()).owned.bindings == {("p1", 100): 5000, ("p1", 101): 5000, ("p2", 7): 5000}

    _session(peer, body)
