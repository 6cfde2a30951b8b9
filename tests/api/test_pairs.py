"""Redundant gateway pairs through the API: created and read with ``pair``, the pair rules as 409s
naming field and rule, the YAML apply shape, and an attachment on a pair degraded (not failed)
while one member is down, failed only when both are. Realization records are written directly,
as a reconciler would (no devices)."""

from __future__ import annotations

from typing import Any

import pytest

from silonet.service import Manager
from silonet.store.repo import Observation, Repository

ANYCAST = "198.18.0.100"
AHEAD = 10**9


def member(name: str, last: int, **over: Any) -> dict[str, Any]:
    body = {"name": name, "silo": "paas", "vtep_ip": ANYCAST, "pair": "paas", "ports": [{"name": "p1"}],
            "management": {"driver": "ovsdb", "address": f"tcp:198.18.1.{last}:6640"}}
    return {**body, **over}


@pytest.fixture
def paired(client: Any, manager: Manager) -> Any:
    assert client.post("/v1/silos", json={"name": "paas", "kind": "paas"}).status_code == 201
    for name, last in (("gw-pa", 61), ("gw-pb", 62)):
        r = client.post("/v1/gateways", json=member(name, last))
        assert r.status_code == 201, r.text
        assert r.json()["pair"] == "paas" and r.json()["vtep_ip"] == ANYCAST
    r = client.post("/v1/gateways", json={"name": "gw-k", "vtep_ip": "198.18.0.4", "ports": [{"name": "p1"}],
                                          "management": {"driver": "ovsdb", "address": "tcp:198.18.1.4:6640"}})
    assert r.status_code == 201, r.text
    for name, members in (("paas", [("gw-pa", "p1"), ("gw-pb", "p1")]), ("kvm", [("gw-k", "p1")])):
        r = client.post("/v1/interface-groups", json={"name": name, "members": [
            {"gateway": g, "port": p} for g, p in members]})
        assert r.status_code == 201, r.text
    assert client.post("/v1/networks", json={"name": "web", "tenant": "t1", "vni": 7000}).status_code == 201
    for group, vlan in (("paas", 500), ("kvm", 300)):
        r = client.post("/v1/networks/web/attachments", json={"interface_group": group, "vlan": vlan})
        assert r.status_code == 201, r.text
    return client


def record(m: Manager, up: tuple[str, ...] = (), down: tuple[str, ...] = ()) -> None:
    with m.db.write() as (s, _gen):
        repo = Repository(s)
        for gw in up:
            repo.record(gw, Observation(reachable=True, realized_generation=AHEAD, error=None))
        for gw in down:
            repo.record(gw, Observation(reachable=False, realized_generation=None, error=f"{gw} is down"))


def attachment(client: Any, group: str) -> dict[str, Any]:
    atts = client.get("/v1/networks/web").json()["attachments"]
    listed = client.get("/v1/attachments", params={"network": "web"}).json()["items"]
    found = next(a for a in atts if a["interface_group"] == group)
    assert next(a for a in listed if a["interface_group"] == group) == found  # the listing agrees
    return found


@pytest.mark.parametrize(("body", "field", "words"), [
    (member("gw-pc", 63), "pair", "pair 'paas' has 2 members already ('gw-pa', 'gw-pb')"),
    (member("gw-x", 64, pair=None), "vtep_ip", "already belongs to gateway 'gw-pa'"),
    (member("gw-x", 64, pair="other"), "vtep_ip", "not in pair 'other'"),
    (member("gw-x", 64, vtep_ip="198.18.0.4", pair="kvm-pair"), "vtep_ip", "'gw-k', which is not in pair"),
])
def test_the_pair_rules_are_409s_naming_field_and_rule(paired: Any, body: dict, field: str, words: str) -> None:
    before = paired.get("/v1/gateways").json()
    r = paired.post("/v1/gateways", json=body)
    assert r.status_code == 409, r.text
    assert r.json()["field"] == field and words in r.json()["message"], r.json()
    assert paired.get("/v1/gateways").json() == before


def test_members_read_back_with_their_pair_and_status(paired: Any, manager: Manager) -> None:
    by = {g["name"]: g for g in paired.get("/v1/gateways").json()}
    assert by["gw-pa"]["pair"] == by["gw-pb"]["pair"] == "paas" and by["gw-k"]["pair"] is None
    record(manager, up=("gw-pa", "gw-pb", "gw-k"))
    status = {s["gateway"]: s for s in paired.get("/v1/status").json()}
    assert status["gw-pa"]["pair"] == "paas" and status["gw-k"]["pair"] is None
    assert {g["gateway"]: g["pair"] for g in attachment(paired, "paas")["gateways"]} == {
        "gw-pa": "paas", "gw-pb": "paas", "gw-k": None}


def test_the_status_summary_counts_what_the_status_lists(paired: Any, manager: Manager) -> None:
    """``/v1/status/summary``: the states of ``/v1/status`` counted, and the gateways with an error."""
    def both() -> tuple[dict, dict]:
        rows = paired.get("/v1/status").json()
        counted: dict[str, int] = {}
        for row in rows:
            counted[row["state"]] = counted.get(row["state"], 0) + 1
        errors = sum(1 for row in rows if row["last_error"] or row["binding_errors"])
        return paired.get("/v1/status/summary").json(), {"gateways": len(rows), "states": counted,
                                                         "with_errors": errors}

    summary, listed = both()
    assert summary == listed and summary["states"] == {"pending": 3} and summary["with_errors"] == 0
    record(manager, up=("gw-pa", "gw-pb"), down=("gw-k",))
    summary, listed = both()
    assert summary == listed and summary["states"] == {"failed": 1, "realized": 2} and summary["with_errors"] == 1


def test_one_member_down_degrades_both_down_fails(paired: Any, manager: Manager) -> None:
    record(manager, up=("gw-pa", "gw-pb", "gw-k"))
    assert attachment(paired, "paas")["status"] == "realized"
    record(manager, down=("gw-pa",))
    att = attachment(paired, "paas")
    assert att["status"] == "degraded", att
    assert "gateway 'gw-pa': gw-pa is down; its pair partner 'gw-pb' carries the traffic" in att["reason"]
    peer = attachment(paired, "kvm")  # the pair is one site for the other silo's attachment
    assert peer["status"] == "degraded" and "'gw-pb' carries the traffic" in peer["reason"], peer
    record(manager, down=("gw-pb",))
    att = attachment(paired, "paas")
    assert att["status"] == "failed" and "'gw-pa'" in att["reason"] and "'gw-pb'" in att["reason"], att
    record(manager, up=("gw-pa",))  # back, resynced: the pair forwards again through it
    assert attachment(paired, "paas")["status"] == "degraded"
    record(manager, up=("gw-pb",))
    assert attachment(paired, "paas")["status"] == "realized"


def test_a_wait_on_a_pair_with_a_member_down_ends_degraded(paired: Any, manager: Manager) -> None:
    record(manager, up=("gw-pb", "gw-k"), down=("gw-pa",))
    r = paired.post("/v1/networks/web/attachments?wait=5", json={"interface_group": "paas", "vlan": 501})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "degraded", r.json()


def test_apply_takes_pairs_and_a_patch_can_leave_one(paired: Any) -> None:
    r = paired.patch("/v1/gateways/gw-pb", json={"pair": None})
    assert r.status_code == 409 and r.json()["field"] == "vtep_ip", r.text  # the anycast address is the pair's
    r = paired.patch("/v1/gateways/gw-pb", json={"pair": None, "vtep_ip": "198.18.0.7"})
    assert r.status_code == 200 and r.json()["pair"] is None, r.text
    r = paired.patch("/v1/gateways/gw-pb", json={"pair": "paas", "vtep_ip": ANYCAST})
    assert r.status_code == 200 and r.json()["pair"] == "paas", r.text


@pytest.mark.parametrize("order", [("gw-pa", "gw-pb"), ("gw-pb", "gw-pa")])
def test_one_apply_renames_and_moves_a_pair_in_any_order(paired: Any, order: tuple[str, str]) -> None:
    last = {"gw-pa": 61, "gw-pb": 62}
    body = {"gateways": [member(n, last[n], pair="paas2", vtep_ip="198.18.0.101") for n in order]}
    r = paired.post("/v1/apply", json=body)
    assert r.status_code == 200, r.text
    by = {g["name"]: g for g in paired.get("/v1/gateways").json()}
    assert {(by[n]["pair"], by[n]["vtep_ip"]) for n in order} == {("paas2", "198.18.0.101")}
    three = {"gateways": [member(n, 70 + i, pair="paas2", vtep_ip="198.18.0.101")
                          for i, n in enumerate(("gw-pa", "gw-pb", "gw-pc"))]}
    r = paired.post("/v1/apply", json=three)
    assert r.status_code == 409 and "has 2 members already" in r.json()["message"], r.text
    assert {g["name"] for g in paired.get("/v1/gateways").json()} == {"gw-pa", "gw-pb", "gw-k"}  # nothing written
