"""Hypothesis over random valid intents with random apply sets: the export applied back changes
nothing (dry run and real) and exports the same; applied to an empty store it builds the same
intent; one set's export applied with --prune --set S --force to a store holding another version
of S makes that store's S the same, leaving its other objects alone.

Intents are built valid by construction (unique names and tunnel addresses, disjoint ports, pairs
that share address, silo and driver, one network per (group, VLAN)) and applied with each object's
own ``apply_set`` (absent, null, '' or a name), then partly again as a named set; each example gets
fresh stores (copies of one migrated SQLite file).
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from silonet.cli.export import as_yaml
from silonet.config import Settings
from silonet.errors import InvalidInput
from silonet.model import SiloKind, rules
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service.export import export_topology
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from tests.service import test_export
from tests.service.test_apply_sets import sets

ABSENT = "<absent>"  # the object leaves ``apply_set`` out (as null): the apply's set, else default
SETS = st.sampled_from([ABSENT, None, "", "default", "a", "b"])  # '': in no set
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=12)
FINGERPRINT = "SHA256:" + "Q" * 43
COUNT = st.sampled_from([3, 1, 4, 0, 2])  # not leaning to 0, as integers() does


def owned(draw: st.DrawFn, obj: dict[str, Any]) -> dict[str, Any]:
    chosen = draw(SETS)
    return obj if chosen == ABSENT else {**obj, "apply_set": chosen}


@st.composite
def intents(draw: st.DrawFn) -> dict[str, Any]:
    silos = [owned(draw, {"name": f"silo-{i}", "kind": draw(st.sampled_from([k.value for k in SiloKind])),
                          "description": draw(TEXT)}) for i in range(draw(st.integers(0, 3)))]
    silo = st.none() | st.sampled_from([s["name"] for s in silos]) if silos else st.none()
    gateways: list[dict[str, Any]] = []
    count = draw(st.sampled_from([4, 2, 6, 0, 1, 3, 5]))
    for i in range(count):
        partner = gateways[-1] if i % 2 and draw(st.booleans()) else None  # gw-1 may pair with gw-0, ...
        driver = partner["management"]["driver"] if partner else draw(st.sampled_from(rules.DRIVERS))
        mgmt: dict[str, Any] = {"driver": driver}
        if driver == "ovsdb":
            mgmt["address"] = f"tcp:198.19.0.{i + 1}:6640"
        elif driver == "ssh":
            mgmt.update(address=f"admin@198.19.1.{i + 1}", dialect="nxos", trust_on_first_use=draw(st.booleans()))
            if draw(st.booleans()):
                mgmt["credentials"] = f"env:SILONET_SECRET_GW{i}"
            if draw(st.booleans()):
                mgmt["host_key"] = FINGERPRINT
        elif draw(st.booleans()):
            mgmt["address"] = f"memory:gw-{i}"
        ports = [{"name": f"p{k}"} for k in range(1, draw(st.integers(1, 4)) + 1)]
        if draw(st.booleans()):
            ports[-1]["switchback"] = True
        gw = {"name": f"gw-{i}", "vtep_ip": f"198.18.0.{i + 1}", "management": mgmt, "ports": ports,
              "mode": draw(st.sampled_from(rules.MODES)), "silo": draw(silo)}
        if (capacity := draw(st.none() | st.integers(64, 8192))) is not None:
            gw["capacity"] = capacity
        if partner is not None:
            partner["pair"] = gw["pair"] = f"pair-{i // 2}"
            gw.update(vtep_ip=partner["vtep_ip"], silo=partner["silo"])
        gateways.append(gw)
    gateways = [owned(draw, gw) for gw in gateways]

    groups = [{"name": f"ig-{k}", "members": [], "switchback": []} for k in range(draw(st.integers(1, 3)))]
    for gw in gateways if groups else ():
        if gw["management"]["driver"] == "ssh":
            continue  # its ports in no group: what a dialect's platform cannot hold is not this test's
        for port in gw["ports"]:
            k = draw(st.integers(-1, len(groups) - 1))  # -1: in no group
            if k >= 0:
                groups[k]["switchback" if port.get("switchback") else "members"].append(
                    {"gateway": gw["name"], "port": port["name"]})
    groups = [owned(draw, {**g, "silo": draw(silo)}) for g in groups if g["members"] or g["switchback"]]

    vnis = draw(st.lists(st.integers(5000, 5020), min_size=4, max_size=4, unique=True))
    networks = [owned(draw, {"name": f"net-{j}", "tenant": draw(st.sampled_from(["t1", "t2"])),  # vni None: pooled
                             "vni": draw(st.none() | st.just(vnis[j])), "attachments": []})
                for j in range(draw(COUNT))]
    if groups and networks:
        keys = st.tuples(st.sampled_from([g["name"] for g in groups]), st.integers(0, 12))
        held = st.dictionaries(keys, st.integers(0, len(networks) - 1), min_size=draw(st.sampled_from([6, 0, 3])),
                               max_size=12)
        for (group, vlan), j in draw(held).items():
            networks[j]["attachments"].append(owned(draw, {"interface_group": group, "vlan": vlan}))
    return {"silos": silos, "gateways": gateways, "interface_groups": groups, "networks": networks}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export-template") / "silonet.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


class Stores:
    """Fresh stores, each a copy of the migrated template."""

    def __init__(self, template: Path, where: Path) -> None:
        self.template, self.where, self.made = template, where, itertools.count()
        self.dbs: list[Database] = []

    def new(self) -> Manager:
        path = self.where / f"store-{next(self.made)}.db"
        shutil.copy(self.template, path)
        db = Database(f"sqlite:///{path}")
        self.dbs.append(db)
        return Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010)))

    def close(self) -> None:
        for db in self.dbs:
            db.dispose()
        self.dbs.clear()


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


def build(m: Manager, intent: dict[str, Any], moved: list[str]) -> None:
    """The intent, each object in the set it names; then the networks ``moved`` applied as set b."""
    m.apply(S.validate(S.Topology, intent))
    again = [{k: v for k, v in n.items() if k != "apply_set"} | {"attachments": []}
             for n in intent["networks"] if n["name"] in moved]
    if again:
        m.apply(S.validate(S.Topology, {"networks": again}), apply_set="b")


def exported_sets(data: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """Objects -> their sets, as ``test_apply_sets.sets`` names them; ``apply_set`` left out or null: default."""
    return test_export.exported_sets(data, absent="default")


@fuzz(30)
@given(intent=intents(), moved=st.lists(st.sampled_from([f"net-{j}" for j in range(4)]), unique=True))
def test_an_export_applied_back_changes_nothing(tmp_path_factory: pytest.TempPathFactory, template: Path,
                                                intent: dict[str, Any], moved: list[str]) -> None:
    stores = Stores(template, tmp_path_factory.mktemp("export"))
    try:
        m = stores.new()
        build(m, intent, moved)
        data = export_topology(m)
        event(f"{sum(len(n['attachments']) for n in data['networks']) // 3 * 3}+ attachments")
        event(f"{sum(1 for g in data['gateways'] if g['pair']) // 2} pair(s)")
        wanted = {key: "b" if key in {("network", n) for n in moved} else set_name
                  for key, set_name in exported_sets(intent).items()}
        assert exported_sets(data) == wanted == sets(m.db)  # each object in the set it named
        assert m.apply(S.validate(S.Topology, data), dry_run=True).changes == []
        assert m.apply(S.validate(S.Topology, data)).changes == []
        assert m.apply(parse_topology(as_yaml(data))).changes == []
        assert export_topology(m) == data

        empty = stores.new()
        empty.apply(parse_topology(as_yaml(data)))
        assert export_topology(empty) == data and sets(empty.db) == sets(m.db)
    finally:
        stores.close()


@fuzz(20)
@given(intent=intents(), which=st.sampled_from(["default", "a", "b"]))
def test_a_sets_export_makes_another_stores_set_the_same(tmp_path_factory: pytest.TempPathFactory,
                                                         template: Path, intent: dict[str, Any], which: str) -> None:
    """Store B holds A's intent with set ``which`` changed (an extra silo and network, a network's
    tenant, an attachment gone); A's export of ``which`` applied to B with --prune --set --force
    makes B's ``which`` A's again, and B's other objects stay as they were."""
    stores = Stores(template, tmp_path_factory.mktemp("export-sets"))
    try:
        a = stores.new()
        build(a, intent, [])
        b = stores.new()
        b.apply(S.validate(S.Topology, export_topology(a)))
        b.apply(S.validate(S.Topology, {"silos": [{"name": "extra", "apply_set": which}],
                                        "networks": [{"name": "extra", "tenant": "t9", "vni": 9999,
                                                      "apply_set": which}]}))
        mine = export_topology(a, which)
        ours = [n for n in mine["networks"] if n["apply_set"] == which]
        if ours:
            b.apply(S.validate(S.Topology, {"networks": [{**ours[0], "tenant": "changed", "attachments": []}]}))
        att = next((att for n in mine["networks"] for att in n["attachments"]), None)
        if att is not None:
            b.detach(next(n["name"] for n in mine["networks"] if att in n["attachments"]), att["interface_group"],
                     att["vlan"])
        others = {k: v for k, v in sets(b.db).items() if v != which}
        assert export_topology(b, which) != mine

        foreign = sorted(n["name"] for n in mine["networks"] if n["apply_set"] != which)
        event("the set holds a network of another set" if foreign else "the set is whole")
        if foreign:  # a network of another set holds the set's attachments: --set refuses to take it
            with pytest.raises(InvalidInput) as err:
                b.apply(S.validate(S.Topology, mine), prune=True, apply_set=which, force=True)
            assert {p.field for p in err.value.problems} == {f"networks[{n}].apply_set" for n in foreign}
            return
        b.apply(S.validate(S.Topology, mine), prune=True, apply_set=which, force=True)
        assert export_topology(b, which) == mine
        assert {k: v for k, v in sets(b.db).items() if v != which} == others
    finally:
        stores.close()
