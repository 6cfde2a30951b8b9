"""Issue 16, items 2, 3 and 7: names a device could misread are refused when written, rows
stored under the older rule still open (flagged, on no device), and what one switch of a
dialect cannot hold is refused when the attachment is made, naming gateway, dialect and rule."""

from __future__ import annotations

import pytest

from silonet.errors import Conflict
from silonet.model import Attachment, Gateway, InterfaceGroup, Management, Port, PortRef, Silo, VirtualNetwork
from silonet.plan import compile_gateway
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store.repo import Repository
from tests.conftest import ADMIN

UUID_NAME = "0b8b5a2e-3c1f-4a43-9a3e-2f7d1c9e8b10"


@pytest.mark.parametrize("bad", ["--", "-x", "--help", ".hidden", "_x", UUID_NAME, UUID_NAME.upper()])
def test_a_new_network_name_a_device_could_misread_is_refused(client, bad: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/networks", json={"name": bad, "tenant": "acme"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "name" and bad in body["message"]
    assert client.get("/v1/networks").json() == []


def test_other_names_follow_the_rule_too(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/networks", json={"name": "ok", "tenant": "-t"})
    assert r.status_code == 422 and r.json()["field"] == "tenant"
    r = client.post("/v1/silos", json={"name": UUID_NAME})
    assert r.status_code == 422 and r.json()["field"] == "name"


def test_ordinary_names_still_pass(client) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "0", "cust-42", "a.b_c-d", "9" * 64, "0b8b5a2e-3c1f-4a43-9a3e-2f7d1c9e8b1"):
        assert client.post("/v1/networks", json={"name": name, "tenant": "acme"}).status_code == 201, name


# ----------------------------------------------------------------- older rows
def _legacy_store(manager: Manager) -> None:
    """Rows an older silonet accepted, written as it wrote them."""
    with manager.db.write() as (s, gen):
        repo = Repository(s)
        repo.save_silo(Silo("-old-silo"))
        gw = Gateway("gw-a", "198.18.0.1", Management("ovsdb", "tcp:198.18.1.1:6640"), ports=(Port("p1"),))
        repo.save_gateway(gw)
        grp = InterfaceGroup("g1", members=(PortRef("gw-a", "p1"),))
        repo.save_group(grp)
        for name, vni in (("--", 5000), (UUID_NAME, 5001), ("fine", 5002)):
            repo.save_network(VirtualNetwork(name, "acme", vni))
        for vlan, net in ((100, "--"), (101, UUID_NAME), (102, "fine")):
            repo.add_attachment(Attachment("g1", vlan, net, gen), gen)
        repo.bump({"gw-a"}, gen)


def test_an_old_store_opens_flags_what_breaks_todays_rules_and_keeps_it_off_devices(client, manager) -> None:  # type: ignore[no-untyped-def]
    _legacy_store(manager)
    manager.cache.invalidate()
    nets = {n["name"]: n for n in client.get("/v1/networks").json()}
    assert set(nets) == {"--", UUID_NAME, "fine"}
    assert nets["fine"]["violations"] == []
    assert nets["--"]["violations"] and "name: '--' must start with a letter or a digit" in nets["--"]["violations"][0]
    assert "UUID" in nets[UUID_NAME]["violations"][0]
    assert nets["--"]["attachments"][0]["status"] == "failed"
    assert "configured on no gateway" in nets["--"]["attachments"][0]["reason"]
    page = client.get("/v1/attachments").json()["items"]
    assert {a["network"]: a["status"] for a in page}["--"] == "failed"
    assert {a["network"]: a["status"] for a in page}["fine"] == "pending"
    silo = client.get("/v1/silos/-old-silo").json()
    assert silo["violations"] == ["name: '-old-silo' must start with a letter or a digit (a device CLI reads a "
                                  "leading '-' as an option)"]

    # On no device: the compiler leaves the quarantined networks out, the others are there.
    with manager.db.read() as s:
        inv = Repository(s).load_inventory()
    assert set(inv.quarantined) == {"--", UUID_NAME}
    desired = compile_gateway(inv, "gw-a")
    assert {ls.network for ls in desired.logical_switches.values()} == {"fine"}
    assert set(desired.bindings) == {("p1", 102)}
    plan = client.get("/v1/plan").json()["gateways"][0]["operations"]
    assert all(op.get("network", "fine") == "fine" for op in plan)

    # New writes cannot build on them; the operator can still delete them by name.
    r = client.post("/v1/networks/--/attachments", json={"interface_group": "g1", "vlan": 200})
    assert r.status_code == 409 and r.json()["field"] == "network" and "older version" in r.json()["message"]
    assert client.delete("/v1/networks/--?cascade=true").status_code == 204
    assert client.delete(f"/v1/networks/{UUID_NAME}?cascade=true").status_code == 204
    assert client.delete("/v1/silos/-old-silo").status_code == 204


# -------------------------------------------------------------- dialect limits
def _ssh_gateway(client, name: str, dialect: str, ip: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/gateways", json={
        "name": name, "vtep_ip": ip, "ports": [{"name": "Ethernet1"}, {"name": "Ethernet2"}],
        "management": {"driver": "ssh", "address": f"admin@{ip}", "dialect": dialect}})
    assert r.status_code == 201, r.text
    for port, group in (("Ethernet1", f"{name}-g1"), ("Ethernet2", f"{name}-g2")):
        r = client.post("/v1/interface-groups", json={"name": group, "members": [{"gateway": name, "port": port}]})
        assert r.status_code == 201, r.text


def _attach(client, net: str, group: str, vlan: int, vni: int | None = None):  # type: ignore[no-untyped-def]
    if client.get(f"/v1/networks/{net}").status_code == 404:
        assert client.post("/v1/networks", json={"name": net, "tenant": "acme",
                                                 **({"vni": vni} if vni else {})}).status_code == 201
    return client.post(f"/v1/networks/{net}/attachments", json={"interface_group": group, "vlan": vlan})


@pytest.mark.parametrize("dialect", ["eos", "nxos", "junos"])
def test_vlan_0_is_refused_where_the_platform_maps_tagged_vlans_only(client, dialect: str) -> None:  # type: ignore[no-untyped-def]
    _ssh_gateway(client, "sw1", dialect, "198.18.0.11")
    r = _attach(client, "net1", "sw1-g1", 0)
    assert r.status_code == 409, r.text
    msg = r.json()["message"]
    assert "gateway 'sw1'" in msg and f"({dialect} dialect)" in msg and "VLAN 0" in msg
    assert _attach(client, "net1", "sw1-g1", 10).status_code == 201


@pytest.mark.parametrize("dialect", ["eos", "nxos"])
def test_a_vlan_name_past_32_characters_is_refused(client, dialect: str) -> None:  # type: ignore[no-untyped-def]
    _ssh_gateway(client, "sw1", dialect, "198.18.0.11")
    long = "n" * 25  # silonet-<25> = 33 characters
    r = _attach(client, long, "sw1-g1", 10)
    assert r.status_code == 409 and "32" in r.json()["message"] and f"({dialect} dialect)" in r.json()["message"]
    assert _attach(client, "n" * 24, "sw1-g1", 11).status_code == 201
    # per-port platforms (the vtepctl dialect, ovsdb) have no such limit
    _ssh_gateway(client, "sw2", "vtepctl", "198.18.0.12")
    assert _attach(client, long, "sw2-g1", 10).status_code == 201


def test_nxos_vnis_that_translate_onto_one_vlan_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    _ssh_gateway(client, "sw1", "nxos", "198.18.0.11")
    assert _attach(client, "a", "sw1-g1", 10, vni=5000).status_code == 201
    r = _attach(client, "b", "sw1-g2", 20, vni=5000 + 1968)  # same translated VLAN 2000 + 5000 % 1968
    assert r.status_code == 409 and "both translate to VLAN" in r.json()["message"]
    assert "(nxos dialect)" in r.json()["message"]
    # one VNI from two VLANs of the same ports
    r = _attach(client, "a", "sw1-g1", 11)
    assert r.status_code == 409 and "would both map to translated VLAN" in r.json()["message"]
    # a second group (other ports) may carry the same VNI on another VLAN
    assert _attach(client, "a", "sw1-g2", 12).status_code == 201


def test_a_vni_change_by_apply_is_checked_against_the_limits(manager: Manager) -> None:
    def topo(vni_b: int) -> S.Topology:
        return S.Topology.model_validate({
            "gateways": [{"name": "sw1", "vtep_ip": "198.18.0.11", "ports": [{"name": "Ethernet1"}, {"name": "E2"}],
                          "management": {"driver": "ssh", "address": "admin@198.18.0.11", "dialect": "nxos"}}],
            "interface_groups": [{"name": "g1", "members": [{"gateway": "sw1", "port": "Ethernet1"}]},
                                 {"name": "g2", "members": [{"gateway": "sw1", "port": "E2"}]}],
            "networks": [{"name": "a", "tenant": "t", "vni": 5000,
                          "attachments": [{"interface_group": "g1", "vlan": 10}]},
                         {"name": "b", "tenant": "t", "vni": vni_b,
                          "attachments": [{"interface_group": "g2", "vlan": 20}]}]})

    manager.apply(topo(6000))
    with pytest.raises(Conflict, match="both translate to VLAN"):
        manager.apply(topo(5000 + 1968))
    assert {n.name: n.vni for n in manager.list_networks()} == {"a": 5000, "b": 6000}


# ------------------------------------------------------------ apply is linear
class _CountingName(str):
    """A name that counts how often it is compared: a linear duplicate check compares almost never."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountingName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_the_duplicate_name_check_of_apply_is_linear() -> None:
    n = 4000
    nets = [S.TopologyNetworkIn.model_construct(name=_CountingName(f"net{i}"), tenant="t", vni=None, attachments=[])
            for i in range(n)]
    topo = S.Topology.model_construct(silos=[], gateways=[], interface_groups=[], networks=nets)
    _CountingName.compared = 0
    topo._unique()
    assert _CountingName.compared < 10 * n  # was n * n: every name against every name (16 million here)


def test_duplicates_are_still_named(client) -> None:  # type: ignore[no-untyped-def]
    body = {"networks": [{"name": "x", "tenant": "t"}, {"name": "y", "tenant": "t"}, {"name": "x", "tenant": "t"}]}
    r = client.post("/v1/apply", json=body, headers=ADMIN)
    assert r.status_code == 422 and "listed twice: x" in r.json()["message"]
