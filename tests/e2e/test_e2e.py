"""End to end: silonet configures real ovs-vtep gateways and hosts in different silos talk.

Every device check also goes through OVS's own vtep-ctl, not only through silonet."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Fabric, eventually

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]


def test_attach_joins_silos_with_different_vlan_ids(fab: Fabric) -> None:
    fab.network("n1", 5001)
    for group, vlan in (("vsa", 100), ("kvm1", 300), ("bm", 0)):
        assert fab.attach("n1", group, vlan)["status"] == "realized"
    va, kvm, bm = fab.host("vsa", 100), fab.host("kvm1", 300), fab.host("bm", 0)
    assert fab.ping(va, kvm), "vsphere-a VLAN 100 -> kvm VLAN 300"
    assert fab.ping(kvm, bm), "kvm VLAN 300 -> baremetal untagged"
    assert fab.ping(bm, va), "baremetal untagged -> vsphere-a VLAN 100"
    # The switch-back group's binding sits on p48 only.
    assert fab.lab.vtep_ctl("gw-va", "list-bindings", "gw-va", "p48").split() == ["0100", "n1"]
    ports = fab.lab.vtep_ctl("gw-va", "list-ports", "gw-va").split()
    assert "p1" not in ports and "p2" not in ports


def test_two_networks_stay_isolated(fab: Fabric) -> None:
    fab.network("red", 5002)
    fab.network("blue", 5003)
    fab.attach("red", "vsa", 100)
    fab.attach("red", "kvm1", 300)
    fab.attach("blue", "vsa", 101)
    fab.attach("blue", "kvm2", 300)  # the same VLAN ID in kvm's other VLAN domain
    assert fab.ping(fab.host("vsa", 100), fab.host("kvm1", 300))
    assert fab.ping(fab.host("vsa", 101), fab.host("kvm2", 300))
    assert fab.no_ping(fab.host("vsa", 100), fab.host("kvm2", 300))
    assert fab.no_ping(fab.host("kvm1", 300), fab.host("kvm2", 300))


def test_group_spanning_two_gateways(fab: Fabric) -> None:
    fab.network("row", 5004)
    out = fab.attach("row", "vsb", 200)
    assert {g["gateway"] for g in out["gateways"]} == {"gw-vb1", "gw-vb2"}
    a, b = fab.host("vsb", 200, 0), fab.host("vsb", 200, 1)
    assert a["gateway"] != b["gateway"]
    assert fab.ping(a, b), "two racks of one VLAN domain, joined through their gateways"


def test_detach_stops_traffic_and_removes_rows(fab: Fabric) -> None:
    fab.network("n5", 5005)
    fab.attach("n5", "vsa", 100)
    fab.attach("n5", "bm", 0)
    va, bm = fab.host("vsa", 100), fab.host("bm", 0)
    assert fab.ping(va, bm)
    fab.detach("n5", "bm", 0)
    assert fab.lab.vtep_ctl("gw-bm", "list-ls").strip() == ""
    assert fab.lab.vtep_ctl("gw-bm", "list-bindings", "gw-bm", "p1").strip() == ""
    bm_vtep = next(g["vtep_ip"] for g in fab.lab.status()["gateways"] if g["name"] == "gw-bm")
    assert bm_vtep not in fab.lab.vtep_ctl("gw-va", "list-remote-macs", "n5")
    eventually(lambda: fab.no_ping(va, bm), what="traffic to stop")


def test_learned_macs_become_remote_macs_at_the_peers(fab: Fabric) -> None:
    fab.network("n6", 5006)
    fab.attach("n6", "vsa", 100)
    fab.attach("n6", "kvm1", 300)
    va, kvm = fab.host("vsa", 100), fab.host("kvm1", 300)
    assert fab.ping(va, kvm)
    vtep = {g["name"]: g["vtep_ip"] for g in fab.lab.status()["gateways"]}
    eventually(lambda: f"{kvm['mac']} -> vxlan_over_ipv4/{vtep['gw-kvm']}" in fab.lab.vtep_ctl(
        "gw-va", "list-remote-macs", "n6"), what="the kvm host's MAC at gw-va")
    eventually(lambda: f"{va['mac']} -> vxlan_over_ipv4/{vtep['gw-va']}" in fab.lab.vtep_ctl(
        "gw-kvm", "list-remote-macs", "n6"), what="the vsphere host's MAC at gw-kvm")
    # The dry-run plan knows the learned MACs too: nothing left to do anywhere.
    eventually(lambda: all(not g["operations"] for g in fab.client.get("/v1/plan").json()["gateways"]),
               what="an empty plan")


def test_out_of_band_delete_is_repaired(fab: Fabric) -> None:
    fab.network("n7", 5007)
    fab.attach("n7", "vsa", 100)
    fab.attach("n7", "bm", 0)
    fab.lab.vtep_ctl("gw-bm", "unbind-ls", "gw-bm", "p1", "0")
    eventually(lambda: fab.lab.vtep_ctl("gw-bm", "list-bindings", "gw-bm", "p1").split() == ["0000", "n7"],
               what="the binding to come back")
    assert fab.ping(fab.host("vsa", 100), fab.host("bm", 0))


def test_foreign_binding_is_left_alone(fab: Fabric) -> None:
    fab.lab.vtep_ctl("gw-kvm", "add-ls", "ops-team", "--", "set", "Logical_Switch", "ops-team", "tunnel_key=9999",
                     "--", "bind-ls", "gw-kvm", "p1", "301", "ops-team")
    try:
        fab.network("n8", 5008)
        out = fab.attach("n8", "kvm1", 301)
        assert out["status"] == "failed" and "foreign logical switch 'ops-team'" in out["reason"]
        fab.attach("n8", "kvm1", 300)  # the rest of the port is fine
        assert fab.lab.vtep_ctl("gw-kvm", "list-bindings", "gw-kvm", "p1").split() == [
            "0300", "n8", "0301", "ops-team"]
        fab.clear()
        assert fab.lab.vtep_ctl("gw-kvm", "list-ls").split() == ["ops-team"]
    finally:
        fab.lab.vtep_ctl("gw-kvm", "unbind-ls", "gw-kvm", "p1", "301")
        # ovs-vtep adds its own rows for a bound switch: clear them, retry while it catches up.
        eventually(lambda: fab.lab.gateway_exec("gw-kvm", ["sh", "-c", "vtep-ctl clear-local-macs ops-team && "
                                                           "vtep-ctl del-ls ops-team"]).returncode == 0,
                   what="the foreign switch to be removable")


def test_gateway_daemons_restart_and_resync_without_duplicates(fab: Fabric) -> None:
    fab.network("n9", 5009)
    fab.attach("n9", "vsa", 100)
    fab.attach("n9", "kvm1", 300)
    va, kvm = fab.host("vsa", 100), fab.host("kvm1", 300)
    assert fab.ping(va, kvm)
    over_ssh = fab.gateway_driver("gw-kvm") == "ssh"
    if over_ssh:
        assert fab.lab.kill_daemon("gw-kvm", "sshd")
    assert fab.lab.kill_daemon("gw-kvm", "ovs-vtep")
    assert fab.lab.kill_daemon("gw-kvm", "ovsdb-server")
    eventually(lambda: fab.client.get("/v1/gateways/gw-kvm/status").json()["reachable"] is False,
               what="gw-kvm to be reported unreachable")
    # Meanwhile the intent changes: silonet must catch up when the gateway is back.
    r = fab.client.post("/v1/networks/n9/attachments", json={"interface_group": "kvm1", "vlan": 301})
    assert r.status_code == 201 and r.json()["status"] == "failed"  # with the device's error, until it is back
    assert "gw-kvm" in r.json()["reason"]
    fab.lab.start_daemon("gw-kvm", "ovsdb-server")
    fab.lab.start_daemon("gw-kvm", "ovs-vtep")
    if over_ssh:
        fab.lab.start_daemon("gw-kvm", "sshd")
    eventually(lambda: fab.client.get("/v1/gateways/gw-kvm/status").json()["reachable"] is True, timeout=30,
               what="gw-kvm to be reachable again")
    assert fab.ping(va, kvm, timeout=30)
    assert fab.lab.vtep_ctl("gw-kvm", "list-ls").split() == ["n9"]
    eventually(lambda: fab.lab.vtep_ctl("gw-kvm", "list-bindings", "gw-kvm", "p1").split() == [
        "0300", "n9", "0301", "n9"], what="the attachment made while it was down")
    mcast = fab.lab.vtep_ctl("gw-kvm", "--columns=MAC", "find", "Mcast_Macs_Remote", "MAC=unknown-dst")
    assert mcast.count("unknown-dst") == 1
    locators = fab.lab.vtep_ctl("gw-kvm", "--columns=dst_ip", "list", "Physical_Locator").split()
    ips = [x for x in locators if x.startswith('"')]
    assert len(ips) == len(set(ips)), f"duplicate locators: {ips}"


def test_gateways_use_the_driver_of_the_fleet(fab: Fabric) -> None:
    drivers = {g["name"]: g["management"]["driver"] for g in fab.client.get("/v1/gateways").json()}
    if fab.driver == "mixed":
        assert set(drivers.values()) == {"ovsdb", "ssh"}
    else:
        assert set(drivers.values()) == {fab.driver}
    for name, driver in drivers.items():
        if driver == "ssh":
            mgmt = fab.client.get(f"/v1/gateways/{name}").json()["management"]
            assert mgmt["dialect"] == "vtepctl" and mgmt["credentials"].startswith("file:")


def test_no_secret_in_logs_api_or_audit(fab: Fabric) -> None:
    """The private key's material appears nowhere: not in logs, API answers or the audit log."""
    if fab.driver == "ovsdb":  # nothing secret to leak: no gateway holds a credentials reference
        assert all(g["management"]["credentials"] is None for g in fab.client.get("/v1/gateways").json())
        return
    key_file = Path(fab.lab.status()["client_key"])  # in the secrets directory
    body = [line for line in Path(key_file).read_text().splitlines() if line and not line.startswith("-----")]
    assert body, "the key file has material"
    fab.network("s1", 5010)
    fab.attach("s1", "vsa", 100)
    fab.attach("s1", "kvm1", 300)
    seen = "\n".join(fab.logs) + fab.client.get("/v1/audit?limit=1000").text + fab.client.get("/v1/gateways").text
    for gw in fab.client.get("/v1/gateways").json():
        seen += fab.client.get(f"/v1/gateways/{gw['name']}/status").text
    for chunk in body:
        assert chunk not in seen
