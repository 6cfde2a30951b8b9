"""Apply sets: a prune deletes only its own set's objects, within a guard; an apply names each
changed field and warns where a change may surprise (issue 17, items 2 and 3)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from silonet.errors import Conflict, InvalidInput
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.applyset import PruneRefused
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from tests.conftest import EXAMPLE, Snapshot

SET_A = """
silos: [{name: s-a}]
gateways:
  - {name: gw-a, silo: s-a, vtep_ip: 198.18.0.11, management: {driver: ovsdb, address: "tcp:127.0.0.1:16651"},
     ports: [{name: p1}]}
interface_groups: [{name: g-a, silo: s-a, members: [{gateway: gw-a, port: p1}]}]
networks:
  - {name: net-a, tenant: acme, vni: 6000, attachments: [{interface_group: g-a, vlan: 100}]}
  - {name: net-a2, tenant: acme, vni: 6001, attachments: [{interface_group: g-a, vlan: 101}]}
"""
SET_B = """
silos: [{name: s-b}]
gateways:
  - {name: gw-b, silo: s-b, vtep_ip: 198.18.0.12, management: {driver: ovsdb, address: "tcp:127.0.0.1:16652"},
     ports: [{name: p1}]}
interface_groups: [{name: g-b, silo: s-b, members: [{gateway: gw-b, port: p1}]}]
networks:
  - {name: net-b, tenant: globex, vni: 6100, attachments: [{interface_group: g-b, vlan: 200}]}
"""


def sets(db: Database) -> dict[tuple[str, str], str | None]:
    """Every stored object -> its apply set (attachments named network/group/vlan)."""
    out: dict[tuple[str, str], str | None] = {}
    with db.engine.connect() as conn:
        for table, kind in (("silos", "silo"), ("gateways", "gateway"), ("interface_groups", "interface-group"),
                            ("networks", "network")):
            out.update({(kind, n): s for n, s in conn.execute(text(f"SELECT name, apply_set FROM {table}"))})
        rows = conn.execute(text("SELECT n.name, g.name, a.vlan, a.apply_set FROM attachments a "
                                 "JOIN networks n ON n.id = a.network_id JOIN interface_groups g ON g.id = a.group_id"))
        out.update({("attachment", f"{n}/{g}/{v}"): s for n, g, v, s in rows})
    return out


def changed(out: S.ApplyOut) -> set[tuple[str, str, str]]:
    return {(c.action, c.kind, c.name) for c in out.changes}


@pytest.fixture
def two_sets(manager: Manager) -> Manager:
    """Set a and set b applied, and a network with two attachments made directly (no set)."""
    manager.apply(parse_topology(SET_A), apply_set="a")
    manager.apply(parse_topology(SET_B), apply_set="b")
    manager.create_network(S.NetworkIn(name="hand", tenant="acme", vni=6200))
    manager.attach("hand", S.AttachmentIn(interface_group="g-b", vlan=300))
    manager.attach("hand", S.AttachmentIn(interface_group="g-a", vlan=300))
    return manager


def test_objects_remember_the_set_that_applied_them(two_sets: Manager) -> None:
    got = sets(two_sets.db)
    assert got[("gateway", "gw-a")] == "a" and got[("attachment", "net-a/g-a/100")] == "a"
    assert got[("silo", "s-b")] == "b" and got[("attachment", "net-b/g-b/200")] == "b"
    assert got[("network", "hand")] is None and got[("attachment", "hand/g-a/300")] is None
    assert {s for s in got.values()} == {"a", "b", None}


def test_prune_of_one_set_leaves_the_other_set_and_direct_objects(two_sets: Manager) -> None:
    before = sets(two_sets.db)
    smaller = parse_topology(SET_A.replace(
        "  - {name: net-a2, tenant: acme, vni: 6001, attachments: [{interface_group: g-a, vlan: 101}]}\n", ""))
    done = two_sets.apply(smaller, prune=True, apply_set="a")
    assert changed(done) == {("detach", "attachment", "net-a2/g-a/101"), ("delete", "network", "net-a2")}
    assert done.prune is not None and done.prune.deletes == {"attachment": 1, "network": 1}
    assert sets(two_sets.db) == {k: v for k, v in before.items()
                                 if k not in {("network", "net-a2"), ("attachment", "net-a2/g-a/101")}}
    # set b's file does not list hand's attachment on g-b: b's prune leaves it (it is in no set)
    assert two_sets.apply(parse_topology(SET_B), prune=True, apply_set="b").changes == []
    assert ("attachment", "hand/g-b/300") in sets(two_sets.db)


def test_prune_keeps_what_was_made_directly_in_the_default_set_too(seeded: Manager) -> None:
    seeded.create_network(S.NetworkIn(name="hand", tenant="acme"))
    seeded.attach("hand", S.AttachmentIn(interface_group="kvb", vlan=7))
    smaller = parse_topology(EXAMPLE.read_text().replace("      - {interface_group: pad, vlan: 0}   # untagged in "
                                                          "the PaaS silo\n", ""))
    done = seeded.apply(smaller, prune=True)
    assert changed(done) == {("detach", "attachment", "cust-43/pad/0")}
    inv = seeded.inventory()
    assert "hand" in inv.networks and ("kvb", 7) in inv.attachments


def test_a_prune_that_would_cut_a_direct_attachment_is_refused(two_sets: Manager, snapshot: Snapshot) -> None:
    two_sets.attach("net-a2", S.AttachmentIn(interface_group="g-a", vlan=102))  # by hand, on a network of set a
    before = snapshot()
    without = parse_topology(SET_A.replace(
        "  - {name: net-a2, tenant: acme, vni: 6001, attachments: [{interface_group: g-a, vlan: 101}]}\n", ""))
    with pytest.raises(Conflict) as err:
        two_sets.apply(without, prune=True, apply_set="a")
    assert err.value.field == "prune"
    assert "network 'net-a2'" in err.value.message and "(g-a, 102)" in err.value.message
    assert "made directly" in err.value.message
    assert snapshot() == before


def test_guard_refuses_a_prune_deleting_more_than_the_file_declares(seeded: Manager, snapshot: Snapshot) -> None:
    silos_only = parse_topology("silos: [{name: vsphere-a}, {name: kvm-b}, {name: baremetal-c}, {name: paas-d}]")
    before = snapshot()
    with pytest.raises(PruneRefused) as err:
        seeded.apply(silos_only, prune=True)
    msg = err.value.message
    assert "refused for apply set 'default'" in msg
    assert "15 objects (5 attachments, 2 networks, 4 interface groups, 4 gateways)" in msg
    assert "more than the 4 the file declares" in msg and "--force" in msg
    assert snapshot() == before
    done = seeded.apply(silos_only, prune=True, force=True)
    assert done.prune is not None and done.prune.forced and not done.prune.refused
    assert sum(1 for c in done.changes if c.action in ("delete", "detach")) == 15
    inv = seeded.inventory()
    assert not inv.networks and not inv.groups and set(inv.silos) == {"vsphere-a", "kvm-b", "baremetal-c", "paas-d"}


def test_an_empty_file_prunes_nothing_unless_forced(seeded: Manager, snapshot: Snapshot) -> None:
    empty = parse_topology("")
    before = snapshot()
    with pytest.raises(PruneRefused) as err:
        seeded.apply(empty, prune=True)
    assert ("19 objects (5 attachments, 2 networks, 4 interface groups, 4 gateways, 4 silos) and the file "
            "declares nothing") in err.value.message
    dry = seeded.apply(empty, prune=True, dry_run=True)  # lists every deletion and what the guard would do
    assert dry.prune is not None and dry.prune.refused and dry.prune.declared == 0
    assert dry.prune.message.startswith("the guard would refuse this prune of apply set 'default': it would delete 19")
    assert changed(dry) == {
        ("detach", "attachment", "cust-42/vsa/100"), ("detach", "attachment", "cust-42/kvb/2100"),
        ("detach", "attachment", "cust-42/bmc/300"), ("detach", "attachment", "cust-43/kvb/2200"),
        ("detach", "attachment", "cust-43/pad/0"), ("delete", "network", "cust-42"), ("delete", "network", "cust-43"),
        *(("delete", "interface-group", g) for g in ("vsa", "kvb", "bmc", "pad")),
        *(("delete", "gateway", g) for g in ("gw-a", "gw-b", "gw-c", "gw-d")),
        *(("delete", "silo", s) for s in ("vsphere-a", "kvm-b", "baremetal-c", "paas-d"))}
    assert snapshot() == before
    assert seeded.apply(empty, prune=True, apply_set="other").changes == []  # a set with nothing: nothing to do
    seeded.apply(empty, prune=True, force=True)
    assert not seeded.inventory().networks and not seeded.inventory().groups


def test_a_dry_run_within_the_guard_says_what_it_deletes(seeded: Manager) -> None:
    topo = parse_topology(EXAMPLE.read_text())
    topo.networks = [n for n in topo.networks if n.name == "cust-42"]
    dry = seeded.apply(topo, prune=True, dry_run=True)
    assert dry.prune is not None and not dry.prune.refused and dry.prune.declared == 16
    assert dry.prune.message == ("prune of apply set 'default' deletes 3 objects (2 attachments, 1 network); "
                                 "the file declares 16 objects")


def test_an_unchanged_object_moves_to_the_set_that_applies_it(two_sets: Manager) -> None:
    both = parse_topology(SET_B + "  - {name: hand, tenant: acme, vni: 6200, attachments: "
                                  "[{interface_group: g-b, vlan: 300}]}\n")
    out = two_sets.apply(both, apply_set="a", dry_run=True)
    fields = {(c.kind, c.name): c.fields for c in out.changes}
    assert fields[("network", "net-b")] == {"apply_set": ("b", "a")}
    assert fields[("network", "hand")] == {"apply_set": (None, "a")}
    assert fields[("attachment", "hand/g-b/300")] == {"apply_set": (None, "a")}
    assert all(c.action == "update" for c in out.changes) and len(out.changes) == 7
    assert any("5 object(s) move from apply set 'b' to 'a'" in w for w in out.warnings)
    two_sets.apply(both, apply_set="a")
    got = sets(two_sets.db)
    assert got[("network", "hand")] == "a" and got[("gateway", "gw-b")] == "a" and got[("gateway", "gw-a")] == "a"
    assert two_sets.apply(both, apply_set="a").changes == []  # applied again: nothing to do
    # b's file still declares them, but b no longer owns anything: its prune deletes nothing
    assert two_sets.apply(parse_topology(""), apply_set="b", prune=True).changes == []


def test_an_update_names_each_field_old_and_new(seeded: Manager) -> None:
    edited = EXAMPLE.read_text().replace("vni: 5000", "vni: 5100").replace(
        "    capacity: 4096\n    ports: [{name: p1}]\n  - name: gw-c",
        "    capacity: 2048\n    ports: [{name: p1}, {name: p2, switchback: true}]\n  - name: gw-c")
    out = seeded.apply(parse_topology(edited), dry_run=True)
    fields = {(c.action, c.kind, c.name): c.fields for c in out.changes}
    assert fields == {
        ("update", "network", "cust-42"): {"vni": (5000, 5100)},
        ("update", "gateway", "gw-b"): {"capacity": (4096, 2048), "ports": (["p1"], ["p1", "p2 (switchback)"])}}
    assert out.model_dump(mode="json")["changes"][0]["fields"] in ({"vni": [5000, 5100]},
                                                                   {"capacity": [4096, 2048],
                                                                    "ports": [["p1"], ["p1", "p2 (switchback)"]]})


def test_a_live_network_moving_is_warned(seeded: Manager) -> None:
    moved = EXAMPLE.read_text().replace("vni: 5000", "vni: 5100").replace("tenant: globex", "tenant: initech")
    out = seeded.apply(parse_topology(moved))
    assert ("network cust-42 is live (3 attachments on gw-a, gw-b, gw-c): its VNI changes 5000 -> 5100"
            in out.warnings[0])
    assert out.warnings[1].startswith("network cust-43 is live (2 attachments on gw-b, gw-d): its tenant changes "
                                      "globex -> initech")
    assert len(out.warnings) == 2
    seeded.create_network(S.NetworkIn(name="idle", tenant="acme", vni=7000))
    seeded.apply(parse_topology(moved + "  - {name: idle, tenant: acme, vni: 7000}\n"))
    out = seeded.apply(parse_topology(moved + "  - {name: idle, tenant: hooli, vni: 7001}\n"))
    assert out.warnings == []  # no attachment: nothing moves on a device


def test_an_edited_vlan_without_prune_says_the_old_attachment_stays(seeded: Manager) -> None:
    edited = parse_topology(EXAMPLE.read_text().replace("{interface_group: bmc, vlan: 300}",
                                                        "{interface_group: bmc, vlan: 301}"))
    out = seeded.apply(edited, dry_run=True)
    assert changed(out) == {("attach", "attachment", "cust-42/bmc/301")}
    assert out.warnings == ["network cust-42 gets (bmc, 301) and keeps (bmc, 300), which the file no longer lists: "
                            "the old attachment (bmc, 300) stays; --prune removes it"]
    pruned = seeded.apply(edited, prune=True)
    assert changed(pruned) == {("attach", "attachment", "cust-42/bmc/301"), ("detach", "attachment", "cust-42/bmc/300")}
    assert pruned.warnings == []


def test_a_bad_set_name_is_refused(seeded: Manager, snapshot: Snapshot) -> None:
    before = snapshot()
    with pytest.raises(InvalidInput) as err:
        seeded.apply(parse_topology(""), apply_set="-x")
    assert err.value.field == "set"
    assert snapshot() == before
