"""The export (issue 21, "Export"): the intent in the shape apply takes, each object with its apply
set; an apply of it changes nothing; one set's export applied with --prune --set S --force makes
another store's set S the same; objects' own ``apply_set`` in a file, and the rule an apply that
names a set holds them to; one query per table, whatever the size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from silonet.cli.export import as_yaml
from silonet.config import Settings
from silonet.errors import InvalidInput
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.export import export_topology, topology
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from silonet.store.repo import Repository
from tests.conftest import Snapshot
from tests.service.test_apply_sets import SET_A, SET_B, sets
from tests.support.inventory import fleet


def topo(data: dict[str, Any]) -> S.Topology:
    return S.validate(S.Topology, data)


def new_manager(tmp_path: Path, name: str) -> Manager:
    db = Database(f"sqlite:///{tmp_path / name}.db")
    db.upgrade()
    return Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010)))


@pytest.fixture
def mixed(manager: Manager) -> Manager:
    """Sets a and b, objects made directly (no set) on both, a gateway with credentials."""
    manager.apply(parse_topology(SET_A), apply_set="a")
    manager.apply(parse_topology(SET_B), apply_set="b")
    manager.create_network(S.NetworkIn(name="hand", tenant="acme", vni=6200))
    manager.attach("hand", S.AttachmentIn(interface_group="g-b", vlan=300))
    manager.attach("net-a", S.AttachmentIn(interface_group="g-b", vlan=301))  # by hand, on set a's network
    manager.create_gateway(S.GatewayIn.model_validate({
        "name": "gw-ssh", "vtep_ip": "198.18.0.13", "mode": "observe",
        "management": {"driver": "ssh", "dialect": "nxos", "address": "admin@198.19.0.13",
                       "credentials": "env:SILONET_SECRET_GW_SSH", "host_key": "SHA256:" + "A" * 43}}))
    return manager


def exported_sets(data: dict[str, Any], absent: str | None = None) -> dict[tuple[str, str], str | None]:
    """A topology's objects -> their apply sets (None: none; ``absent``: of one without ``apply_set``,
    or null), named as ``test_apply_sets.sets`` names them."""
    def of(item: dict[str, Any]) -> str | None:
        named = item.get("apply_set")
        return absent if named is None else named or None

    kinds = {"silos": "silo", "gateways": "gateway", "interface_groups": "interface-group", "networks": "network"}
    out = {(kind, item["name"]): of(item) for section, kind in kinds.items() for item in data[section]}
    out.update({("attachment", f"{n['name']}/{a['interface_group']}/{a['vlan']}"): of(a)
                for n in data["networks"] for a in n["attachments"]})
    return out


def test_the_export_is_the_intent_with_every_objects_set(mixed: Manager) -> None:
    data = export_topology(mixed)
    assert exported_sets(data) == sets(mixed.db)  # every stored object, with the set it is in
    gw = next(g for g in data["gateways"] if g["name"] == "gw-ssh")
    assert gw["management"] == {"driver": "ssh", "address": "admin@198.19.0.13", "dialect": "nxos",
                                "credentials": "env:SILONET_SECRET_GW_SSH", "trust_on_first_use": False,
                                "host_key": "SHA256:" + "A" * 43}  # the reference, as stored: never a secret
    assert gw["mode"] == "observe" and gw["apply_set"] == "" and gw["capacity"] == 4096  # '': in no set
    assert topo(data).model_dump(mode="json") == data  # exactly the shape apply takes, every field given


def test_applying_the_export_back_changes_nothing(mixed: Manager, snapshot: Snapshot) -> None:
    data = export_topology(mixed)
    before = snapshot()
    assert mixed.apply(topo(data), dry_run=True).changes == []
    out = mixed.apply(topo(data))
    assert out.changes == [] and out.warnings == []
    assert mixed.apply(parse_topology(as_yaml(data), "export.yaml")).changes == []  # the CLI's YAML too
    assert snapshot() == before  # not even the generation moved
    assert export_topology(mixed) == data


def test_an_export_builds_the_same_intent_in_an_empty_store(mixed: Manager, tmp_path: Path) -> None:
    data = export_topology(mixed)
    other = new_manager(tmp_path, "b")
    out = other.apply(topo(data))
    assert {c.action for c in out.changes} == {"create", "attach"}
    assert export_topology(other) == data
    assert sets(other.db) == sets(mixed.db)


def test_one_sets_export_holds_only_its_objects(mixed: Manager) -> None:
    data = export_topology(mixed, "a")
    assert set(exported_sets(data).values()) == {"a"}
    assert exported_sets(data) == {k: v for k, v in sets(mixed.db).items() if v == "a"}
    assert [a["interface_group"] for n in data["networks"] for a in n["attachments"]] == ["g-a", "g-a"]
    assert export_topology(mixed, "nothing-there") == {"silos": [], "gateways": [], "interface_groups": [],
                                                       "networks": []}
    with pytest.raises(InvalidInput) as err:
        export_topology(mixed, "-bad")
    assert err.value.field == "set"


def test_a_sets_export_applied_with_prune_makes_another_stores_set_the_same(mixed: Manager, tmp_path: Path) -> None:
    # store B: the same objects A's set a refers to (set b, a hand-made network), and a set a of its own
    b = new_manager(tmp_path, "b")
    b.apply(parse_topology(SET_B), apply_set="b")
    b.apply(parse_topology(SET_A.replace("vni: 6001", "vni: 6002").replace("vlan: 101", "vlan: 111")
                           + "  - {name: only-in-b, tenant: acme, vni: 6003}\n"), apply_set="a")
    b.create_network(S.NetworkIn(name="hand-b", tenant="acme", vni=6300))
    b.attach("hand-b", S.AttachmentIn(interface_group="g-a", vlan=400))  # by hand, on B's set a group
    others = {k: v for k, v in sets(b.db).items() if v != "a"}
    a_of_a = export_topology(mixed, "a")

    out = b.apply(topo(a_of_a), prune=True, apply_set="a", force=True)
    assert ("delete", "network", "only-in-b") in {(c.action, c.kind, c.name) for c in out.changes}
    assert export_topology(b, "a") == a_of_a
    assert {k: v for k, v in sets(b.db).items() if v != "a"} == others  # set b and the hand-made ones stay
    assert b.apply(topo(a_of_a), prune=True, apply_set="a").changes == []  # once the same: nothing to do


def test_a_network_of_another_set_holding_the_sets_attachments_is_listed_with_its_own(manager: Manager) -> None:
    manager.apply(parse_topology(SET_A), apply_set="a")
    manager.apply(parse_topology("networks: [{name: net-a, tenant: acme, vni: 6000}]"), apply_set="c")  # takes net-a
    data = export_topology(manager, "a")
    net = next(n for n in data["networks"] if n["name"] == "net-a")
    assert net["apply_set"] == "c" and net["attachments"] == [{"interface_group": "g-a", "vlan": 100,
                                                               "apply_set": "a"}]
    assert manager.apply(topo(data)).changes == []  # applied without a set: each object stays in its own
    with pytest.raises(InvalidInput) as err:  # with --set a the file would take net-a from set c: refused
        manager.apply(topo(data), apply_set="a")
    assert err.value.field == "networks[net-a].apply_set"


def test_decommissioning_gateways_are_left_out(seeded: Manager) -> None:
    seeded.create_gateway(S.GatewayIn.model_validate({"name": "gw-x", "vtep_ip": "198.18.0.99",
                                                      "management": {"driver": "memory"}}))
    assert "gw-x" in {g["name"] for g in export_topology(seeded)["gateways"]}
    with seeded.db.write() as (session, _gen):  # as a delete leaves it while a reconciler cleans its device
        Repository(session).decommission_gateway("gw-x")
    data = export_topology(seeded)
    assert "gw-x" not in {g["name"] for g in data["gateways"]}
    assert seeded.apply(topo(data)).changes == []


# ------------------------------------------------------------------ objects' own apply sets
def test_objects_of_a_file_go_to_the_sets_they_name(manager: Manager) -> None:
    out = manager.apply(topo({
        "silos": [{"name": "s1", "apply_set": "x"}, {"name": "s2", "apply_set": ""}, {"name": "s3"},
                  {"name": "s4", "apply_set": None}],  # absent or null: the apply's set (none named: default)
        "networks": [{"name": "n1", "tenant": "t", "vni": 7000, "apply_set": "y"}]}))
    assert out.set == "default"
    got = sets(manager.db)
    assert got == {("silo", "s1"): "x", ("silo", "s2"): None, ("silo", "s3"): "default", ("silo", "s4"): "default",
                   ("network", "n1"): "y"}
    audit = {e.object: e.after["apply_set"] for e in manager.audit() if e.after}
    assert audit == {"silo/s1": "x", "silo/s2": None, "silo/s3": "default", "silo/s4": "default", "network/n1": "y"}


def test_an_object_moves_between_sets_named_in_the_file(manager: Manager) -> None:
    manager.apply(parse_topology(SET_A), apply_set="a")
    data = export_topology(manager)
    for net in data["networks"]:
        net["apply_set"] = "b" if net["name"] == "net-a" else ""
    out = manager.apply(topo(data))
    fields = {c.name: c.fields for c in out.changes}
    assert fields == {"net-a": {"apply_set": ("a", "b")}, "net-a2": {"apply_set": ("a", None)}}
    assert any("move from apply set 'a' to 'b' (network net-a)" in w for w in out.warnings)
    assert any("leave apply set 'a' for none (network net-a2)" in w for w in out.warnings)
    got = sets(manager.db)
    assert got[("network", "net-a")] == "b" and got[("network", "net-a2")] is None
    assert got[("attachment", "net-a/g-a/100")] == "a"  # the attachments said so


def test_a_changed_object_leaving_every_set_is_stored_in_none(manager: Manager) -> None:
    manager.apply(parse_topology(SET_A), apply_set="a")
    data = export_topology(manager)
    data["networks"][0].update(tenant="other", apply_set="")
    data["gateways"][0].update(mode="observe", apply_set="")
    manager.apply(topo(data))
    got = sets(manager.db)
    assert got[("network", data["networks"][0]["name"])] is None and got[("gateway", "gw-a")] is None
    assert manager.apply(topo(export_topology(manager))).changes == []


def test_an_apply_naming_a_set_refuses_objects_of_another(manager: Manager, snapshot: Snapshot) -> None:
    before = snapshot()
    with pytest.raises(InvalidInput) as err:
        manager.apply(topo({"silos": [{"name": "s1", "apply_set": "a"}, {"name": "s2", "apply_set": "b"},
                                      {"name": "s3", "apply_set": ""}, {"name": "s4"},
                                      {"name": "s5", "apply_set": None}],
                            "networks": [{"name": "n1", "tenant": "t", "apply_set": "a", "attachments": [
                                {"interface_group": "g", "vlan": 5, "apply_set": "c"}]}]}), apply_set="a")
    problems = {p.field: p.message for p in err.value.problems}
    assert set(problems) == {"silos[s2].apply_set", "silos[s3].apply_set",
                             "networks[n1].attachments[(g, 5)].apply_set"}
    assert ("'b' is not the apply set this apply names ('a'): when an apply names a set with --set (?set=), each "
            "object's apply_set is absent or that set") in problems["silos[s2].apply_set"]
    assert problems["silos[s3].apply_set"].startswith("silos[s3].apply_set: '' (no apply set) is not")
    assert snapshot() == before
    kept = topo({"silos": [{"name": "s1", "apply_set": "a"}, {"name": "s4"}, {"name": "s5", "apply_set": None}]})
    manager.apply(kept, apply_set="a")
    assert sets(manager.db) == {("silo", "s1"): "a", ("silo", "s4"): "a", ("silo", "s5"): "a"}


def test_a_prune_without_a_set_prunes_default_and_never_what_the_file_declares(manager: Manager) -> None:
    manager.apply(topo({"silos": [{"name": "s1"}, {"name": "s2"}, {"name": "s3", "apply_set": "x"}]}))
    out = manager.apply(topo({"silos": [{"name": "s1", "apply_set": "y"}]}), prune=True, force=True)
    assert out.set == "default" and {(c.action, c.name) for c in out.changes} == {("delete", "s2"), ("update", "s1")}
    assert sets(manager.db) == {("silo", "s1"): "y", ("silo", "s3"): "x"}


# ------------------------------------------------------------------ cost
@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    yield seen
    event.remove(db.engine, "before_cursor_execute", note)


def _count(m: Manager, seen: list[str]) -> int:
    export_topology(m)  # the cache is loaded now: what a server's export costs
    seen.clear()
    export_topology(m)
    return len(seen)


def test_the_export_costs_the_same_statements_for_any_size(tmp_path: Path, manager: Manager,
                                                          statements: list[str]) -> None:
    empty = {kind: {} for kind in ("silo", "gateway", "interface-group", "network", "attachment")}
    manager.apply(topo(topology(fleet(2, attachments=3), empty)))
    small = _count(manager, statements)
    manager.apply(topo(topology(fleet(40, groups=8, attachments=1200, networks_span=2), empty)), prune=True,
                  force=True)
    assert len(export_topology(manager)["networks"]) == 600
    assert _count(manager, statements) == small == 7  # generation, a query per table (5), generation again
