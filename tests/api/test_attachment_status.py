"""Attachment status through the API (plan/status.py): an unreachable peer gateway degrades the
other groups' attachments and names itself, an own gateway failing fails them naming every
failing gateway, a tenant reads that some sites are unreachable, pending says why, and every
``?wait=`` answers with the status reached. Realization records are written directly, as a
reconciler would (no devices)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from sqlalchemy import insert

from silonet.service import Manager
from silonet.service.auth import TENANT_GATEWAY_ERROR
from silonet.store.leases import db_time
from silonet.store.repo import Observation, Repository
from silonet.store.tables import GatewayLeaseRow, GatewayRow
from tests.api.test_auth import bearer, tenant_token

AHEAD = 10**9
DOWN_C = "cannot connect to tcp:198.18.1.3:6640: connection refused"


def record(m: Manager, realized: tuple[str, ...] = (), down: dict[str, str] | None = None) -> None:
    with m.db.write() as (s, _gen):
        repo = Repository(s)
        for gw in realized:
            repo.record(gw, Observation(reachable=True, realized_generation=AHEAD, error=None))
        for gw, error in (down or {}).items():
            repo.record(gw, Observation(reachable=False, realized_generation=None, error=error))


def statuses(client: Any, network: str, headers: dict[str, str] | None = None) -> dict[tuple[str, int], dict]:
    atts = client.get(f"/v1/networks/{network}", headers=headers or {}).json()["attachments"]
    listed = client.get("/v1/attachments", params={"network": network}, headers=headers or {}).json()["items"]
    by = {(a["interface_group"], a["vlan"]): a for a in atts}
    assert {(a["interface_group"], a["vlan"]): a for a in listed} == by  # the paged listing says the same
    return by


def add_duo(client: Any) -> None:
    """A group on two gateways of its own (gw-e, gw-f), attached to cust-42."""
    for name, ip in (("gw-e", "198.18.0.5"), ("gw-f", "198.18.0.6")):
        r = client.post("/v1/gateways", json={"name": name, "vtep_ip": ip, "ports": [{"name": "p1"}], "management": {
            "driver": "ovsdb", "address": f"tcp:198.18.1.{ip.rsplit('.', 1)[1]}:6640"}})
        assert r.status_code == 201, r.text
    r = client.post("/v1/interface-groups", json={"name": "duo", "members": [
        {"gateway": "gw-e", "port": "p1"}, {"gateway": "gw-f", "port": "p1"}]})
    assert r.status_code == 201, r.text
    r = client.post("/v1/networks/cust-42/attachments", json={"interface_group": "duo", "vlan": 5})
    assert r.status_code == 201, r.text


def test_an_unreachable_peer_degrades_the_other_groups_and_is_named(client: Any, seeded: Manager) -> None:
    record(seeded, realized=("gw-a", "gw-b", "gw-c", "gw-d"))
    assert {a["status"] for a in statuses(client, "cust-42").values()} == {"realized"}
    record(seeded, down={"gw-c": DOWN_C})  # after it realized everything: what it holds now is unknown
    by = statuses(client, "cust-42")
    for key in (("vsa", 100), ("kvb", 2100)):  # their own gateways (gw-a, gw-b) forward
        assert by[key]["status"] == "degraded", by[key]
        assert by[key]["reason"] == ("forwards on its own gateways, but not to every site: "
                                     f"peer gateway 'gw-c': {DOWN_C}")
    assert by[("bmc", 300)]["status"] == "failed"  # gw-c is bmc's own gateway
    assert by[("bmc", 300)]["reason"] == f"gateway 'gw-c': {DOWN_C}"
    assert {a["status"] for a in statuses(client, "cust-43").values()} == {"realized"}  # gw-c carries none of it


def test_own_gateways_failing_fail_it_naming_every_one(client: Any, seeded: Manager) -> None:
    add_duo(client)
    record(seeded, realized=("gw-a", "gw-b", "gw-d"),
           down={"gw-c": DOWN_C, "gw-e": "cannot connect to tcp:198.18.1.5:6640: timed out",
                 "gw-f": "cannot connect to tcp:198.18.1.6:6640: host unreachable"})
    duo = statuses(client, "cust-42")[("duo", 5)]
    assert duo["status"] == "failed"
    assert duo["reason"] == ("gateway 'gw-e': cannot connect to tcp:198.18.1.5:6640: timed out; "
                             "gateway 'gw-f': cannot connect to tcp:198.18.1.6:6640: host unreachable; "
                             f"peer gateway 'gw-c': {DOWN_C}")
    vsa = statuses(client, "cust-42")[("vsa", 100)]  # three peers down: all named
    assert vsa["status"] == "degraded"
    for gw in ("gw-c", "gw-e", "gw-f"):
        assert f"'{gw}'" in vsa["reason"]


def test_a_tenant_reads_that_some_sites_are_unreachable(client: Any, seeded: Manager) -> None:
    record(seeded, realized=("gw-a", "gw-b", "gw-d"), down={"gw-c": DOWN_C})
    acme = bearer(tenant_token(client, "acme"))
    by = statuses(client, "cust-42", acme)
    vsa = by[("vsa", 100)]
    assert vsa["status"] == "degraded"
    assert vsa["reason"] == ("forwards on its own gateways, but some sites of the network are unreachable "
                             "(1 of 2 other gateways)")
    assert by[("bmc", 300)]["status"] == "failed"
    assert by[("bmc", 300)]["reason"] == f"gateway 'gw-c': {TENANT_GATEWAY_ERROR}"
    for a in by.values():
        assert "198.18" not in (a["reason"] or "") and all("198.18" not in (g["reason"] or "") for g in a["gateways"])
    r = client.post("/v1/networks/cust-42/attachments?wait=5", json={"interface_group": "kvb", "vlan": 7},
                    headers=acme)
    assert r.status_code == 201 and r.json()["status"] == "degraded" and "gw-c" not in r.json()["reason"]


def test_pending_says_why(client: Any, seeded: Manager) -> None:
    r = client.post("/v1/networks/cust-43/attachments", json={"interface_group": "pad", "vlan": 7})
    assert r.json()["status"] == "pending"
    assert r.json()["reason"] == ("gateway 'gw-d': not reached yet: no reconciler drives it "
                                  "(is `silonet serve` running?)")
    with seeded.db.write() as (s, _gen):  # a replica holds gw-d's lease, and has not reached it yet
        gid = s.query(GatewayRow.id).filter(GatewayRow.name == "gw-d").scalar()
        s.execute(insert(GatewayLeaseRow).values(gateway_id=gid, owner="replica-1",
                                                 expires_at=db_time(s.get_bind().dialect.name, 60)))
    pad = statuses(client, "cust-43")[("pad", 7)]
    assert pad["status"] == "pending" and pad["reason"] == "gateway 'gw-d': connecting to the device"
    record(seeded, realized=("gw-b", "gw-d"))
    assert statuses(client, "cust-43")[("pad", 7)]["status"] == "realized"


def test_every_wait_answers_the_status_reached(client: Any, seeded: Manager) -> None:
    record(seeded, realized=("gw-a", "gw-b", "gw-d"), down={"gw-c": DOWN_C})
    r = client.post("/v1/networks/cust-42/attachments?wait=5", json={"interface_group": "vsa", "vlan": 7})
    assert r.status_code == 201 and r.json()["status"] == "degraded" and "'gw-c'" in r.json()["reason"]
    r = client.post("/v1/networks/cust-42/attachments?wait=5", json={"interface_group": "bmc", "vlan": 7})
    assert r.status_code == 201 and r.json()["status"] == "failed"
    r = client.delete("/v1/networks/cust-42/attachments/vsa/7?wait=5")
    assert r.status_code == 204 and r.headers["silonet-status"] == "degraded"
    assert f"peer gateway 'gw-c': {DOWN_C}" in unquote(r.headers["silonet-reason"])
    r = client.delete("/v1/networks/cust-42/attachments/bmc/7")  # no wait: no status to tell
    assert r.status_code == 204 and "silonet-status" not in r.headers
    r = client.delete("/v1/networks/cust-43?cascade=true&wait=5")
    assert r.status_code == 204 and r.headers["silonet-status"] == "realized" and "silonet-reason" not in r.headers


def test_apply_wait_counts_and_names_the_failed_gateways(client: Any, seeded: Manager) -> None:
    record(seeded, realized=("gw-a", "gw-c"), down={"gw-b": "gw-b is down", "gw-d": "gw-d is down"})
    body = {"networks": [{"name": "more", "tenant": "acme", "attachments": [
        {"interface_group": "vsa", "vlan": 9}, {"interface_group": "kvb", "vlan": 9},
        {"interface_group": "pad", "vlan": 9}]}]}
    r = client.post("/v1/apply?wait=5", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(out["gateways"]) == ["gw-a", "gw-b", "gw-d"] and out["status"] == "failed"
    assert out["reason"] == "failed on 2 of 3 gateway(s): gateway 'gw-b': gw-b is down; gateway 'gw-d': gw-d is down"
