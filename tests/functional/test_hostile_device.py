"""A device that says hostile things, against real ovsdb-servers (issue 16): a MAC that is a shell
command, a locator IP that is not one, a switch marked silonet's under a name silonet cannot
write. Each is a fault in the gateway's status and nothing else: not silonet's state, never
published to the other gateways. And a peer's own error text reaches ``last_error`` bounded
and with its control characters escaped."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from silonet.devices.vtepdb import VtepDb
from silonet.drivers import registry
from silonet.drivers.base import wait_connected
from silonet.drivers.untrusted import ECHO_MAX, FAULTS
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.service import Manager
from tests.functional.conftest import two_gateways

pytestmark = pytest.mark.ovs

EVIL_MAC = "00:11:22:33:44:55$(id>x)"
GOOD_MAC = "02:00:00:00:0a:01"


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached in time"
        time.sleep(0.1)


def test_the_ovsdb_driver_faults_hostile_rows_and_keeps_them_out_of_its_state(vtepdb: VtepDb) -> None:
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", vtepdb.remote), 4096, (Port("p1"),))
    desired = GatewayState({5000: LogicalSwitch(5000, "cust-42", frozenset({"198.18.0.2"}))}, {("p1", 100): 5000})

    async def main() -> None:
        drv = registry("ovsdb")(gw, lambda: None)
        await drv.start()
        try:
            await wait_connected(drv)
            await drv.apply(diff(desired, (await drv.read()).owned))
            vtepdb.ctl("add-ucast-local", "cust-42", EVIL_MAC, "198.18.0.1")
            vtepdb.ctl("add-ucast-local", "cust-42", GOOD_MAC, "198.18.0.1")
            vtepdb.ctl("add-ucast-remote", "cust-42", "02:00:00:00:0b:01;reboot", "198.18.0.2")
            vtepdb.ctl("add-ucast-remote", "cust-42", "02:00:00:00:0b:02", "198.18.0.9`x`")
            vtepdb.ctl("create", "Logical_Switch", 'name="--"', "tunnel_key=5001", "other_config:silonet_managed=true")
            deadline = time.monotonic() + 10
            while len((actual := await drv.read()).faults.get(FAULTS, ())) < 4:  # the IDL's monitor brings them
                assert time.monotonic() < deadline, actual.faults
                await asyncio.sleep(0.05)
            assert actual.owned == desired  # no remote MAC, no switch "--" taken for silonet's
            assert actual.local_macs == {5000: frozenset({GOOD_MAC})}  # the evil one would not be published
            assert actual.facts.foreign_vnis == {5001: "--"}
            assert actual.faults == {FAULTS: sorted([
                f"Ucast_Macs_Local MAC {EVIL_MAC!r} is not a MAC address; not published to other gateways",
                "Ucast_Macs_Remote MAC '02:00:00:00:0b:01;reboot' is not a MAC address; ignored",
                "Ucast_Macs_Remote locator dst_ip '198.18.0.9`x`' is not an IPv4 address; ignored",
                "Logical_Switch name '--' is not a name silonet writes, yet it is marked silonet_managed=true: "
                "taken for someone else's"])}
            # removing silonet's switch still removes the rows it would not read (or OVSDB would refuse)
            await drv.apply(diff(GatewayState(), actual.owned))
            after = await drv.read()
            assert after.owned == GatewayState() and after.faults == {FAULTS: [
                "Logical_Switch name '--' is not a name silonet writes, yet it is marked silonet_managed=true: "
                "taken for someone else's"]}
        finally:
            await drv.close()

    asyncio.run(main())
    assert vtepdb.ctl("list-ls").split() == ["--"]  # the foreign one stays, untouched
    assert vtepdb.ctl("--columns=MAC", "list", "Ucast_Macs_Remote").strip() == ""


@pytest.fixture
def fabric(tmp_path: Path, manager: Manager) -> Iterator[tuple[TestClient, dict[str, VtepDb]]]:
    with two_gateways(tmp_path, manager) as fab:
        yield fab


def test_a_hostile_local_mac_is_a_fault_and_never_published(fabric) -> None:  # type: ignore[no-untyped-def]
    client, dbs = fabric
    for group, vlan in (("ga", 100), ("gb", 200)):
        r = client.post("/v1/networks/cust-42/attachments?wait=10", json={"interface_group": group, "vlan": vlan})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text
    dbs["gw-a"].ctl("add-ucast-local", "cust-42", EVIL_MAC, "198.18.0.1")
    dbs["gw-a"].ctl("add-ucast-local", "cust-42", GOOD_MAC, "198.18.0.1")
    fault = f"Ucast_Macs_Local MAC {EVIL_MAC!r} is not a MAC address; not published to other gateways"
    eventually(lambda: client.get("/v1/gateways/gw-a/status").json()["faults"].get(FAULTS) == [fault],
               what="the fault in gw-a's status")
    # the good MAC of the same pass is published, the hostile one is not
    eventually(lambda: f"{GOOD_MAC} -> vxlan_over_ipv4/198.18.0.1" in dbs["gw-b"].ctl("list-remote-macs", "cust-42"),
               what="the good MAC at gw-b")
    assert "00:11:22:33:44:55" not in dbs["gw-b"].ctl("list-remote-macs", "cust-42")
    assert "00:11:22:33:44:55" not in json.dumps(client.get("/v1/plan").json())
    status = client.get("/v1/gateways/gw-a/status").json()
    assert status["state"] == "realized" and not status["last_error"]  # a fault, not a failure
    assert client.get("/v1/gateways/gw-b/status").json()["faults"] == {}


class _ChattyPeer:
    """Not an ovsdb-server: a loopback JSON-RPC peer that answers every request with a long,
    multi-line error full of control characters (what any tcp: endpoint could send back)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.error = "line one\r\nline two\x1b[2J\x07" + "z" * 5000  # (OVS's parser refuses \u0000)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = threading.Event()

    def __enter__(self) -> _ChattyPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    request = json.loads(conn.recv(65536).decode())
                    conn.sendall(json.dumps({"id": request["id"], "result": None, "error": self.error}).encode())
                except (OSError, ValueError, KeyError):
                    pass


def test_a_peers_error_text_is_bounded_and_escaped_in_status() -> None:
    with _ChattyPeer() as peer:
        gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", f"tcp:127.0.0.1:{peer.port}"), 4096, ())

        async def main() -> str:
            drv = registry("ovsdb")(gw, lambda: None)
            await drv.start()
            try:
                deadline = time.monotonic() + 10
                while "get_schema" not in drv.health().detail:
                    assert time.monotonic() < deadline, drv.health().detail
                    await asyncio.sleep(0.05)
                return drv.health().detail
            finally:
                await drv.close()

        detail = asyncio.run(main())
    assert detail.startswith(f"get_schema from tcp:127.0.0.1:{peer.port}: line one\\r\\nline two\\x1b[2J\\x07zzz")
    assert len(detail) <= ECHO_MAX and detail.endswith("...") and all(c.isprintable() for c in detail)
