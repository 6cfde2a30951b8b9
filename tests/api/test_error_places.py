"""Errors that name the object, through the REST API: a request with several problems hears of
all of them (``problems``, unknown fields first, places named after the items), duplicates and
missing references name both places, over-capacity says who uses the gateway and what would help,
and management addresses are checked when written. Every rejection writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from silonet.model import rules
from silonet.service import Manager
from silonet.store.tables import GatewayRow, GatewayStatusRow, PortRow


def reject(client: Any, snapshot: Any, method: str, url: str, status: int, **kw: Any) -> dict:
    """Send one request that must be refused with ``status``; check the body's shape and that nothing was written."""
    before = snapshot()
    r = client.request(method, url, **kw)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "field", "message", "problems"}, body
    assert body["problems"][0] == {"field": body["field"], "message": body["message"]}, body
    assert snapshot() == before
    return body


def gateway(name: str, i: int, **over: Any) -> dict:
    return {"name": name, "vtep_ip": f"198.18.0.{i}", "management": {"driver": "ovsdb", "address":
            f"tcp:198.18.1.{i}:6640"}, "ports": [{"name": "xe1"}, {"name": "xe2"}], **over}


# ------------------------------------------------------------------ several problems
def test_a_topology_with_several_problems_names_them_all_at_their_places(client, snapshot) -> None:  # type: ignore[no-untyped-def]
    topology = {
        "gateways": [gateway("dc-gw1", 11), gateway("dc-gw2", 12, capacty=8,
                                                    management={"driver": "ovsdb", "address": "198.18.1.12:6640"})],
        "networks": [{"name": "shop-prod", "tenant": "shop", "vni": 0,
                      "attachments": [{"interface_group": "r1", "vlan": 110}, {"interface_grp": "r1", "vlan": 111}]}],
    }
    body = reject(client, snapshot, "POST", "/v1/apply", 422, json=topology)
    assert [p["field"] for p in body["problems"]] == [
        "gateways[dc-gw2].capacty",
        "networks[shop-prod].attachments[1].interface_grp",
        "gateways[dc-gw2].management.address",
        "networks[shop-prod].vni",
        "networks[shop-prod].attachments[1].interface_group",
    ]
    assert body["field"] == "gateways[dc-gw2].capacty"
    assert body["message"] == "gateways[dc-gw2].capacty: unknown field"  # the first problem only, no "(and 4 more)"
    assert body["problems"][2]["message"] == ("gateways[dc-gw2].management.address: '198.18.1.12:6640' "
                                              f"{rules.OVSDB_ADDRESS_RULE}")


def test_a_single_object_with_several_problems(client, snapshot) -> None:  # type: ignore[no-untyped-def]
    body = reject(client, snapshot, "POST", "/v1/gateways", 422, json=gateway(
        "gw-9", 9, vtep_ip="1.2.3", management={"driver": "ovsdb", "address": "198.18.1.9:6640"},
        ports=[{"name": "xe1"}, {"name": "-x"}]))
    assert [p["field"] for p in body["problems"]] == ["vtep_ip", "management.address", "ports[1].name"]


def test_duplicates_name_both_places(client, snapshot) -> None:  # type: ignore[no-untyped-def]
    topology = {"networks": [
        {"name": "shop-prod", "tenant": "shop", "attachments": [{"interface_group": "r1", "vlan": 110}]},
        {"name": "shop-db", "tenant": "shop", "attachments": [{"interface_group": "r1", "vlan": 110}]}]}
    body = reject(client, snapshot, "POST", "/v1/apply", 422, json=topology)
    assert body["problems"] == [{"field": "networks[shop-db].attachments[(r1, 110)]", "message":
                                 "networks[shop-db].attachments[(r1, 110)]: (r1, 110) is in shop-prod and shop-db: "
                                 "one VLAN of an interface group carries one network"}]
    body = reject(client, snapshot, "POST", "/v1/apply", 422,
                  json={"gateways": [gateway("dc-gw1", 11, ports=[{"name": "xe1"}, {"name": "xe1"}])]})
    assert body["message"] == "gateways[dc-gw1].ports: port 'xe1' is listed twice on gateway 'dc-gw1'"


def test_a_missing_gateway_names_the_group(client, snapshot, seeded) -> None:  # type: ignore[no-untyped-def]
    body = reject(client, snapshot, "POST", "/v1/interface-groups", 404,
                  json={"name": "r1", "members": [{"gateway": "dc-gw9", "port": "xe1"}]})
    assert body["field"] == "members.gateway"
    assert body["message"] == "gateway 'dc-gw9' does not exist (interface group 'r1' lists it in members)"
    body = reject(client, snapshot, "POST", "/v1/apply", 404, json={
        "interface_groups": [{"name": "r1", "members": [{"gateway": "dc-gw9", "port": "xe1"}]}]})
    assert "gateway 'dc-gw9' does not exist (interface group 'r1' lists it in members)" in body["message"]


# ------------------------------------------------------------------------ capacity
def test_lowering_a_capacity_below_what_is_used(client, snapshot) -> None:  # type: ignore[no-untyped-def]
    topology = {"gateways": [gateway("gw-t", 60, capacity=8)],
                "interface_groups": [{"name": "two", "members": [{"gateway": "gw-t", "port": "xe1"},
                                                                 {"gateway": "gw-t", "port": "xe2"}]}],
                "networks": [{"name": "tn", "tenant": "t", "attachments": [
                    {"interface_group": "two", "vlan": v} for v in (1, 2, 3, 4)]}]}
    assert client.post("/v1/apply", json=topology).status_code == 200
    topology["gateways"][0]["capacity"] = 4
    body = reject(client, snapshot, "POST", "/v1/apply", 409, json=topology)
    assert body["error"] == "over_capacity" and body["field"] == "capacity"
    assert body["message"] == (
        "gateway 'gw-t' over capacity: its networks use 8 VLAN->VNI entries there, more than the new capacity 4 "
        "(now 8): interface group 'two' (8 = 2 ports x 4 VLANs); a switch-back port on 'gw-t' would bring group "
        "'two' down to 1 entry per VLAN instead of 2 (4 fewer)")
    assert client.get("/v1/gateways/gw-t").json()["capacity"] == 8


# ------------------------------------------------------------------ management addresses
@pytest.mark.parametrize(("management", "rule"), [
    ({"driver": "ovsdb", "address": "198.18.1.9:6640"}, rules.OVSDB_ADDRESS_RULE),
    ({"driver": "ovsdb", "address": "tcp:198.18.1.9"}, rules.INET_RULE.format(scheme="tcp")),
    ({"driver": "ovsdb", "address": "ssl:198.18.1.9:99999"}, rules.INET_RULE.format(scheme="ssl")),
    ({"driver": "ovsdb", "address": "unix:"}, "unix: needs the path of the socket"),
    ({"driver": "ssh", "dialect": "eos", "address": "admin@gw 9"}, rules.SSH_ADDRESS_RULE),
])
def test_a_malformed_address_is_a_422_naming_field_and_rule(client, snapshot, management, rule) -> None:  # type: ignore[no-untyped-def]
    body = reject(client, snapshot, "POST", "/v1/gateways", 422, json=gateway("gw-9", 9, management=management))
    assert body["field"] == "management.address"
    assert body["message"] == f"management.address: {management['address']!r} {rule}"


@pytest.mark.parametrize("address", ["tcp:198.18.1.9:6640", "ssl:gw9.example:6640", "tcp:[2001:db8::9]:6640",
                                     "unix:/run/openvswitch/db.sock"])
def test_well_formed_ovsdb_addresses_are_accepted(client, address) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/gateways", json=gateway("gw-9", 9, management={"driver": "ovsdb", "address": address}))
    assert r.status_code == 201, r.text


def test_two_gateways_on_one_device_is_a_409_naming_the_other(client, snapshot, seeded) -> None:  # type: ignore[no-untyped-def]
    body = reject(client, snapshot, "POST", "/v1/gateways", 409, json=gateway(
        "gw-9", 9, management={"driver": "ovsdb", "address": "ssl:127.0.0.1:16641"}))
    assert body["field"] == "management.address"
    assert body["message"] == ("ovsdb address 'ssl:127.0.0.1:16641' reaches the device of gateway 'gw-a' "
                               "(tcp:127.0.0.1:16641): one device is managed by one gateway")
    ssh = {"driver": "ssh", "dialect": "eos", "address": "admin@198.18.1.50"}
    assert client.post("/v1/gateways", json=gateway("gw-s1", 50, management=ssh)).status_code == 201
    same = {**ssh, "address": "ssh://ops@198.18.1.50:22"}
    body = reject(client, snapshot, "POST", "/v1/apply", 409, json={"gateways": [gateway("gw-s2", 51,
                                                                                        management=same)]})
    assert body["field"] == "gateways[gw-s2].management.address" and "gateway 'gw-s1'" in body["message"]


def _store_old_gateway(manager: Manager, name: str, i: int, address: str) -> None:
    """A row as an older silonet wrote it, before addresses were checked (straight into the tables)."""
    with manager.db.engine.begin() as conn:
        gid = conn.execute(insert(GatewayRow).values(
            name=name, vtep_ip=f"198.18.0.{i}", driver="ovsdb", address=address, dialect=None, credentials_ref=None,
            trust_on_first_use=False, capacity=4096).returning(GatewayRow.id)).scalar_one()
        conn.execute(insert(PortRow).values(gateway_id=gid, name="xe1", switchback=False))
        conn.execute(insert(GatewayStatusRow).values(gateway_id=gid, desired_generation=0, realized_generation=0))
    manager.cache.invalidate()


def test_older_rows_that_break_the_address_rules_still_load_flagged(client, manager) -> None:  # type: ignore[no-untyped-def]
    _store_old_gateway(manager, "gw-old1", 71, "198.18.1.70:6640")
    _store_old_gateway(manager, "gw-old2", 72, "198.18.1.70:6640")  # one device, two gateways: stored before the rule
    shown = {g["name"]: g for g in client.get("/v1/gateways").json()}
    assert set(shown) == {"gw-old1", "gw-old2"}
    assert shown["gw-old1"]["violations"] == [f"management.address: '198.18.1.70:6640' {rules.OVSDB_ADDRESS_RULE}"]
    # written anew, an address follows the rule; fixing its form is no move to another device, so neither
    # is refused for a sharing stored before the rule, while a new gateway on that device is
    fixed = [{"name": g, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "xe1"}],
              "management": {"driver": "ovsdb", "address": "tcp:198.18.1.70:6640"}} for g, i in (("gw-old1", 71),
                                                                                              ("gw-old2", 72))]
    for body in fixed:
        r = client.post("/v1/apply", json={"gateways": [body]})
        assert r.status_code == 200, r.text
        assert client.get(f"/v1/gateways/{body['name']}").json()["violations"] == []
    r = client.post("/v1/gateways", json=gateway("gw-new", 73, management={"driver": "ovsdb",
                                                                           "address": "tcp:198.18.1.70:6640"}))
    assert r.status_code == 409 and "gateway 'gw-old1'" in r.json()["message"], r.text
