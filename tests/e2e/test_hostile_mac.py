"""Issue 16, end to end: a MAC that is a shell command, inserted on an OVSDB gateway, runs nothing
on the SSH gateway of the same VNI and is reported as a fault of the gateway it was read from.

A mixed lab of its own (prefix ``sh``, index 16: never the demo's, the e2e ``se``/5 or another
test's): gw-a is managed over OVSDB, gw-b over SSH (vtepctl dialect on real OpenSSH, whose
batches a shell runs). Before the fix, gw-a published the MAC as learned and gw-b ran
``add-ucast-remote NET 00:11:22:33:44:55$(id>FILE) ...`` through ``sh -s`` on every pass.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.drivers.untrusted import FAULTS, shown
from silonet.lab import GatewaySpec, Group, Host, Lab, LabTopology, Silo, Tor
from silonet.reconcile import Reconciler
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN, fresh_lab
from tests.e2e.conftest import _missing, eventually, lab_inventory

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]

TOPO = LabTopology("hostile", (GatewaySpec("gw-a", "sa"), GatewaySpec("gw-b", "sb")), (
    Silo("sa", "kvm", (Group("ga", (Tor("gw-a", "p1", (Host("ha1", 100, "203.0.113.1"),)),)),)),
    Silo("sb", "baremetal", (Group("gb", (Tor("gw-b", "p1", (Host("hb1", 0, "203.0.113.3"),)),)),)),
))
GOOD_MAC = "02:00:00:00:0a:01"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, TestClient]]:
    if why := _missing():
        pytest.skip(why)
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.skip("missing: sshd (openssh-server; ./run test installs it)")
    base = tmp_path_factory.mktemp("hostile")
    lab = fresh_lab("sh", 16)
    old_known = os.environ.get("SILONET_SSH_KNOWN_HOSTS")
    try:
        lab.up(TOPO, driver="mixed")
        os.environ["SILONET_SSH_KNOWN_HOSTS"] = str(base / "no-known_hosts")  # the inventory's host keys only
        db = Database(f"sqlite:///{base / 'silonet.db'}")
        db.upgrade()
        manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10100),
                                                admin_token=ADMIN_TOKEN))
        manager.apply(lab_inventory(lab))
        rec = Reconciler(manager.runtime, period=5.0, poll=0.5)
        with TestClient(create_app(manager, rec), headers=ADMIN) as client:
            yield lab, client
        db.dispose()
    finally:
        if old_known is None:
            os.environ.pop("SILONET_SSH_KNOWN_HOSTS", None)
        else:
            os.environ["SILONET_SSH_KNOWN_HOSTS"] = old_known
        lab.down()


def test_a_hostile_mac_on_an_ovsdb_gateway_runs_nothing_on_an_ssh_gateway(
        mixed: tuple[Lab, TestClient], tmp_path: Path) -> None:
    lab, client = mixed
    drivers = {g["name"]: g["management"]["driver"] for g in client.get("/v1/gateways").json()}
    assert drivers == {"gw-a": "ovsdb", "gw-b": "ssh"}
    vtep = {g["name"]: g["vtep_ip"] for g in lab.status()["gateways"]}
    assert client.post("/v1/networks", json={"name": "hm1", "tenant": "e2e", "vni": 7016}).status_code == 201
    for group, vlan in (("ga", 100), ("gb", 0)):
        r = client.post("/v1/networks/hm1/attachments?wait=30", json={"interface_group": group, "vlan": vlan})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text

    # ovs-vtep clears a switch's local MACs when it first sets the switch up: insert after that
    eventually(lambda: "unknown-dst" in lab.vtep_ctl("gw-a", "list-local-macs", "hm1"), what="ovs-vtep on gw-a")
    ran = tmp_path / "ran"  # what the MAC's payload would create, from the SSH gateway's shell
    evil = f"00:11:22:33:44:55$(id>{ran})"
    # one transaction: both MACs reach gw-a's next read together
    lab.vtep_ctl("gw-a", "add-ucast-local", "hm1", evil, vtep["gw-a"], "--",
                 "add-ucast-local", "hm1", GOOD_MAC, vtep["gw-a"])
    try:
        # gw-b took the MAC learned with it: it had a pass with everything gw-a read
        eventually(lambda: f"{GOOD_MAC} -> vxlan_over_ipv4/{vtep['gw-a']}" in lab.vtep_ctl(
            "gw-b", "list-remote-macs", "hm1"), timeout=30, what="the good MAC at gw-b (SSH)")
        assert not ran.exists(), f"the SSH gateway ran the MAC's payload: {ran.read_text()!r}"
        assert "00:11:22:33:44:55" not in lab.vtep_ctl("gw-b", "list-remote-macs", "hm1")
        fault = f"Ucast_Macs_Local MAC {shown(evil)} is not a MAC address; not published to other gateways"
        eventually(lambda: client.get("/v1/gateways/gw-a/status").json()["faults"].get(FAULTS) == [fault],
                   what="the fault in gw-a's status")
        b = client.get("/v1/gateways/gw-b/status").json()
        assert b["state"] == "realized" and not b["last_error"] and b["faults"] == {}, b
        a = client.get("/v1/gateways/gw-a/status").json()
        assert a["state"] == "realized" and not a["last_error"], a  # a fault, not a failure
    finally:
        for mac in (evil, GOOD_MAC):
            lab.gateway_exec("gw-a", ["vtep-ctl", "del-ucast-local", "hm1", mac])
        assert client.delete("/v1/networks/hm1?cascade=true&wait=30").status_code == 204
    assert not ran.exists()
