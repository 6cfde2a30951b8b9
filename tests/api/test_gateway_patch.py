"""``PATCH /v1/gateways/{name}``: a JSON merge patch (RFC 7396) of a gateway, checked exactly as a
create, one audited transaction that bumps every gateway it moves; refused, it writes nothing.
On the example inventory (gw-a..gw-d; cust-42 on gw-a, gw-b, gw-c; cust-43 on gw-b, gw-d), no
reconciler."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from silonet.service import Manager
from tests.api.test_auth import bearer, tenant_token
from tests.conftest import Snapshot

FINGERPRINT = "SHA256:" + "B" * 43


@pytest.fixture
def api(client: TestClient, seeded: Manager) -> TestClient:
    return client


def desired(api: TestClient) -> dict[str, int]:
    return {s["gateway"]: s["desired_generation"] for s in api.get("/v1/status").json()}


def test_a_mode_change_answers_the_gateway_and_is_audited(api: TestClient) -> None:
    before = desired(api)
    r = api.patch("/v1/gateways/gw-a", json={"mode": "observe"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["mode"] == "observe" and out["name"] == "gw-a" and out["used"] == 1 and out["capacity"] == 4096
    assert api.get("/v1/gateways/gw-a").json() == out
    after = desired(api)
    assert after["gw-a"] > before["gw-a"]
    assert all(after[g] == before[g] for g in ("gw-b", "gw-c", "gw-d"))  # its desired state is its own
    entry = api.get("/v1/audit?limit=1").json()[0]
    assert (entry["action"], entry["object"], entry["actor"]) == ("gateway.mode", "gateway/gw-a", "admin")
    assert (entry["before"]["mode"], entry["after"]["mode"]) == ("enforce", "observe")
    st = api.get("/v1/gateways/gw-a/status").json()
    assert (st["mode"], st["state"], st["pending_operations"]) == ("observe", "held", None)
    assert {s["gateway"]: s["mode"] for s in api.get("/v1/status").json()}["gw-a"] == "observe"


def test_the_merge_patch_content_type_and_members_reset_by_null(api: TestClient) -> None:
    merge = {"Content-Type": "application/merge-patch+json"}
    r = api.patch("/v1/gateways/gw-b", content=b'{"capacity": 16, "management": {"credentials": '
                                                b'"env:SILONET_SECRET_GW_B"}, "silo": null}', headers=merge)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["capacity"], out["silo"], out["mode"]) == (16, None, "enforce")
    assert out["management"] == {"driver": "ovsdb", "address": "tcp:127.0.0.1:16642", "dialect": None,
                                 "credentials": "env:SILONET_SECRET_GW_B", "trust_on_first_use": False,
                                 "host_key": None}
    entry = api.get("/v1/audit?limit=1").json()[0]
    assert entry["action"] == "gateway.update" and entry["before"]["capacity"] == 4096
    r = api.patch("/v1/gateways/gw-b", json={"capacity": None, "management": {"credentials": None},
                                             "ports": [{"name": "p1"}, {"name": "p9", "switchback": True}]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["capacity"] == 4096 and out["management"]["credentials"] is None  # back to the defaults
    assert out["ports"] == [{"name": "p1", "switchback": False}, {"name": "p9", "switchback": True}]  # whole list


def test_a_host_key_is_pinned_and_unpinned(api: TestClient) -> None:
    r = api.patch("/v1/gateways/gw-c", json={"management": {"host_key": FINGERPRINT}})
    assert r.status_code == 200 and r.json()["management"]["host_key"] == FINGERPRINT, r.text
    r = api.patch("/v1/gateways/gw-c", json={"management": {"host_key": None}})
    assert r.status_code == 200 and r.json()["management"]["host_key"] is None


def test_a_new_tunnel_address_bumps_every_gateway_sharing_a_vni(api: TestClient) -> None:
    before = desired(api)
    r = api.patch("/v1/gateways/gw-a", json={"vtep_ip": "198.18.0.11"})
    assert r.status_code == 200 and r.json()["vtep_ip"] == "198.18.0.11", r.text
    after = desired(api)
    moved = {g for g in after if after[g] != before[g]}
    assert moved == {"gw-a", "gw-b", "gw-c"}  # cust-42's gateways; gw-d carries only cust-43
    peer = api.get("/v1/gateways/gw-b/status").json()["desired"]
    assert "198.18.0.11" in next(ls["flood"] for ls in peer["logical_switches"] if ls["vni"] == 5000)


@pytest.mark.parametrize(("patch", "status", "field", "words"), [
    ({"name": "gw-z"}, 422, "name", "cannot change"),
    ({"mode": "audit"}, 422, "mode", "mode must be one of enforce, observe, maintenance"),
    ({"mode": None, "capacity": 0}, 422, "capacity", "capacity must be an integer"),
    ({"colour": "red"}, 422, "colour", "unknown field"),
    ({"management": {"host_key": "ssh-dss AAAA"}}, 422, "management.host_key", "OpenSSH public key line"),
    ({"management": {"driver": "ssh"}}, 422, "management.address", ""),
    ({"management": {"credentials": "env:SILONET_DB_PASSWORD"}}, 422, "management.credentials", "SILONET_SECRET_"),
    ({"vtep_ip": "198.18.0.2"}, 409, "vtep_ip", "already belongs to gateway 'gw-b'"),
    ({"management": {"address": "tcp:127.0.0.1:16642"}}, 409, "management.address", "gw-b"),
    ({"ports": [{"name": "p1"}]}, 409, "ports", "interface group 'vsa'"),
    ({"ports": [{"name": "p1"}, {"name": "p2"}, {"name": "p48"}]}, 409, "ports.switchback", "switch-back flag"),
    ({"capacity": 0.5}, 422, "capacity", ""),
    ({"silo": "nowhere"}, 404, "silo", "nowhere"),
])
def test_a_refused_patch_names_field_and_rule_and_writes_nothing(api: TestClient, snapshot: Snapshot, patch: dict,
                                                                 status: int, field: str, words: str) -> None:
    rows = snapshot()
    r = api.patch("/v1/gateways/gw-a", json=patch)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field and words in body["message"], body
    assert snapshot() == rows


def test_capacity_below_what_is_used_is_refused(api: TestClient, snapshot: Snapshot) -> None:
    rows = snapshot()
    r = api.patch("/v1/gateways/gw-b", json={"capacity": 1})  # kvb holds 2 VLANs on gw-b
    assert r.status_code == 409 and r.json()["field"] == "capacity" and "over capacity" in r.json()["message"]
    assert snapshot() == rows


def test_a_patch_that_changes_nothing_writes_nothing(api: TestClient, snapshot: Snapshot) -> None:
    rows = snapshot()
    for patch in ({}, {"mode": "enforce"}, {"name": "gw-a", "capacity": 4096}):
        r = api.patch("/v1/gateways/gw-a", json=patch)
        assert r.status_code == 200 and r.json()["mode"] == "enforce", r.text
    assert snapshot() == rows


def test_unknown_gateway_non_object_body_and_tenants(api: TestClient, snapshot: Snapshot) -> None:
    rows = snapshot()
    r = api.patch("/v1/gateways/gw-z", json={"mode": "observe"})
    assert r.status_code == 404 and r.json()["field"] == "name"
    for body in (b"[]", b'"observe"', b"{"):
        r = api.patch("/v1/gateways/gw-a", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["field"] == "body", r.text
    tenant = bearer(tenant_token(api, "acme"))
    rows = snapshot()
    r = api.patch("/v1/gateways/gw-a", json={"mode": "observe"}, headers=tenant)
    assert r.status_code == 403 and "admin token" in r.json()["message"]
    assert snapshot() == rows


def test_a_wait_on_a_held_gateway_ends_at_once(api: TestClient) -> None:
    assert api.patch("/v1/gateways/gw-d", json={"mode": "maintenance"}).status_code == 200
    started = time.monotonic()
    r = api.post("/v1/networks/cust-42/attachments?wait=30", json={"interface_group": "pad", "vlan": 7})
    assert r.status_code == 201, r.text
    assert time.monotonic() - started < 10  # not the 30 s the wait allows
    out = r.json()
    assert out["status"] == "held"
    assert out["reason"] == "gateway 'gw-d': in maintenance mode: silonet changes nothing there"
    listed = api.get("/v1/attachments?interface_group=pad").json()["items"]
    assert {(a["vlan"], a["status"]) for a in listed} == {(0, "held"), (7, "held")}
    assert api.delete("/v1/networks/cust-42/attachments/pad/7?wait=30").headers["silonet-status"] == "held"


def test_the_route_is_documented_with_the_merge_patch_media_type(api: TestClient) -> None:
    op = api.get("/openapi.json").json()["paths"]["/v1/gateways/{name}"]["patch"]
    assert list(op["requestBody"]["content"]) == ["application/merge-patch+json"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/GatewayOut")
