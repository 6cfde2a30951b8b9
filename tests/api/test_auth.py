"""Bearer tokens, the admin and tenant roles, and what a tenant may see (issue 8, part 1)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from silonet.api.app import create_app
from silonet.service import Manager
from tests.conftest import ADMIN, ADMIN_TOKEN

NO_AUTH = {"Authorization": ""}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tenant_token(client, tenant: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/v1/tokens", json={"role": "tenant", "tenant": tenant, "description": f"{tenant} portal"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def v1_routes(manager: Manager) -> list[tuple[str, str]]:
    """Every (method, path) under /v1 in the OpenAPI, path parameters filled with plausible values."""
    out = []
    for path, ops in create_app(manager).openapi()["paths"].items():
        if path.startswith("/v1"):
            path = re.sub(r"\{(vlan|token_id)\}", "100", path)
            path = re.sub(r"\{[a-z_]+\}", "x", path)
            out += [(m.upper(), path) for m in ops]
    return out


def test_every_v1_route_needs_a_valid_token(client, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    routes = v1_routes(manager)
    assert len(routes) >= 25
    for method, path in routes:
        for headers in (NO_AUTH, bearer("snt_not-a-token"), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
            r = client.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz", headers=NO_AUTH).status_code == 200


def test_tokens_are_shown_once_and_stored_hashed(client, manager: Manager) -> None:  # type: ignore[no-untyped-def]
    secret = tenant_token(client, "acme")
    assert secret.startswith("snt_") and len(secret) > 40
    listed = client.get("/v1/tokens").json()
    assert [(t["role"], t["tenant"]) for t in listed] == [("admin", None), ("tenant", "acme")]
    assert all("token" not in t for t in listed)
    with manager.db.engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(text("SELECT * FROM tokens"))]
        audit = [tuple(map(str, r)) for r in conn.execute(text("SELECT * FROM audit"))]
    assert not any(secret in cell or ADMIN_TOKEN in cell for row in rows + audit for cell in row)
    assert client.get("/v1/networks", headers=bearer(secret)).status_code == 200


def test_admin_token_is_seeded_once(manager: Manager) -> None:
    create_app(manager)
    create_app(manager)
    with manager.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tokens WHERE role = 'admin'")).scalar_one() == 1


def test_token_body_rules(client) -> None:  # type: ignore[no-untyped-def]
    cases = [({"role": "tenant"}, "tenant"), ({"role": "admin", "tenant": "acme"}, "tenant"),
             ({"role": "root"}, "role"), ({"role": "tenant", "tenant": "bad name"}, "tenant")]
    for body, field in cases:
        r = client.post("/v1/tokens", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)


def test_a_tenant_sees_and_changes_only_its_own_networks(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    acme, other = bearer(tenant_token(client, "acme")), bearer(tenant_token(client, "initech"))
    tenants = {n["name"]: n["tenant"] for n in client.get("/v1/networks").json()}
    mine = sorted(n for n, t in tenants.items() if t == "acme")
    assert mine, tenants
    assert [n["name"] for n in client.get("/v1/networks", headers=acme).json()] == mine
    assert client.get("/v1/networks", headers=other).json() == []
    net = mine[0]
    # Another tenant's network is as unknown as a missing one: same status, same body shape.
    missing = client.get("/v1/networks/no-such-net", headers=other).json()
    for method, path in (("GET", f"/v1/networks/{net}"), ("GET", f"/v1/networks/{net}/attachments"),
                         ("DELETE", f"/v1/networks/{net}"), ("DELETE", f"/v1/networks/{net}/attachments/vsa/100"),
                         ("GET", f"/v1/attachments?network={net}")):
        r = client.request(method, path, headers=other)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == missing["error"] == "not_found"
    r = client.post(f"/v1/networks/{net}/attachments", headers=other, json={"interface_group": "vsa", "vlan": 999})
    assert r.status_code == 404
    page = client.get("/v1/attachments", headers=acme).json()["items"]
    assert page and {a["network"] for a in page} <= set(mine)
    assert client.get("/v1/attachments", headers=other).json()["items"] == []
    # The owner may: attach, detach, create its own network, not another tenant's.
    r = client.post(f"/v1/networks/{net}/attachments", headers=acme, json={"interface_group": "vsa", "vlan": 999})
    assert r.status_code == 201, r.text
    assert client.delete(f"/v1/networks/{net}/attachments/vsa/999", headers=acme).status_code == 204
    assert client.post("/v1/networks", headers=acme, json={"name": "acme-2", "tenant": "acme"}).status_code == 201
    r = client.post("/v1/networks", headers=acme, json={"name": "acme-3", "tenant": "globex"})
    assert r.status_code == 403 and r.json()["field"] == "tenant"
    actors = [(e["actor"], e["action"]) for e in client.get("/v1/audit?limit=5").json()]
    assert ("tenant:acme", "create") in actors and ("tenant:acme", "attach") in actors


def test_tenants_read_the_inventory_and_may_not_change_it(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    acme = bearer(tenant_token(client, "acme"))
    for path in ("/v1/silos", "/v1/gateways", "/v1/interface-groups"):
        r = client.get(path, headers=acme)
        assert r.status_code == 200 and r.json(), path
        name = r.json()[0]["name"]
        assert client.get(f"{path}/{name}", headers=acme).status_code == 200
        r = client.delete(f"{path}/{name}", headers=acme)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (path, r.text)
    writes = [("POST", "/v1/silos", {"name": "s9"}), ("POST", "/v1/apply", {}),
              ("POST", "/v1/gateways", {"name": "g9"}), ("POST", "/v1/interface-groups", {"name": "i9"}),
              ("GET", "/v1/plan", None), ("GET", "/v1/status", None), ("GET", "/v1/status/summary", None),
              ("GET", "/v1/audit", None),
              ("GET", "/v1/gateways/gw-a/status", None), ("GET", "/v1/tokens", None),
              ("POST", "/v1/tokens", {"role": "admin"}), ("DELETE", "/v1/tokens/1", None)]
    for method, path, body in writes:
        r = client.request(method, path, headers=acme, json=body)
        # a body the schema rejects may answer 422 first; never 2xx
        assert r.status_code in (403, 422), (method, path, r.status_code, r.text)
    for method, path, body in writes:
        if body is None or method == "DELETE":
            r = client.request(method, path, headers=acme)
            assert r.status_code == 403, (method, path, r.text)


def test_revoked_tokens_stop_working_at_once(client) -> None:  # type: ignore[no-untyped-def]
    token = tenant_token(client, "acme")
    assert client.get("/v1/networks", headers=bearer(token)).status_code == 200  # now cached as valid
    tid = next(t["id"] for t in client.get("/v1/tokens").json() if t["tenant"] == "acme")
    assert client.delete(f"/v1/tokens/{tid}").status_code == 204
    r = client.get("/v1/networks", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    assert client.delete(f"/v1/tokens/{tid}").status_code == 404
    assert client.delete("/v1/tokens/999").json()["field"] == "id"
    revoked = [t for t in client.get("/v1/tokens").json() if t["id"] == tid]
    assert revoked[0]["revoked"] is not None
    assert client.get("/v1/audit?limit=1").json()[0]["action"] == "revoke"


@pytest.mark.parametrize("admin", [ADMIN])
def test_admin_may_do_everything(client, seeded: Manager, admin: dict) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/v1/plan", headers=admin).status_code == 200
    assert client.get("/v1/status", headers=admin).status_code == 200
    assert client.post("/v1/networks", headers=admin, json={"name": "any", "tenant": "globex"}).status_code == 201


def test_refusals_told_to_a_tenant_name_no_other_tenants_network(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    acme = bearer(tenant_token(client, "acme"))
    nets = {n["name"]: n for n in client.get("/v1/networks").json()}
    theirs = next(n for n in nets.values() if n["tenant"] != "acme")
    taken = theirs["attachments"][0]
    client.post("/v1/networks", headers=acme, json={"name": "acme-9", "tenant": "acme"})
    r = client.post("/v1/networks/acme-9/attachments", headers=acme,
                    json={"interface_group": taken["interface_group"], "vlan": taken["vlan"]})
    assert r.status_code == 409 and r.json()["field"] == "vlan"
    # "not available": neither which network holds it nor that another tenant's does
    assert r.json()["message"] == (f"VLAN {taken['vlan']} of interface group '{taken['interface_group']}' "
                                   "is not available"), r.text
    r = client.post("/v1/networks", headers=acme, json={"name": "acme-10", "tenant": "acme", "vni": theirs["vni"]})
    assert r.status_code == 409 and r.json()["field"] == "vni" and theirs["name"] not in r.text
    assert r.json()["message"] == f"VNI {theirs['vni']} is not available", r.text
    r = client.post("/v1/networks", headers=acme, json={"name": theirs["name"], "tenant": "acme"})
    assert r.status_code == 409 and r.json()["field"] == "name"
    assert r.json()["message"] == f"network name '{theirs['name']}' is not available", r.text
    # Its own objects are told precisely.
    r = client.post("/v1/networks", headers=acme, json={"name": "acme-9", "tenant": "acme"})
    assert r.status_code == 409 and r.json()["message"] == "network 'acme-9' already exists", r.text
    mine = nets["cust-42"]
    r = client.post("/v1/networks", headers=acme, json={"name": "acme-11", "tenant": "acme", "vni": mine["vni"]})
    assert r.status_code == 409 and "cust-42" in r.json()["message"], r.text
    # The admin hears the whole story.
    r = client.post("/v1/networks", json={"name": "adm-10", "tenant": "acme", "vni": theirs["vni"]})
    assert r.status_code == 409 and theirs["name"] in r.text
    r = client.post("/v1/networks", json={"name": theirs["name"], "tenant": "acme"})
    assert r.status_code == 409 and r.json()["message"] == f"network '{theirs['name']}' already exists"


def test_a_tenant_reads_gateways_without_their_management(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    acme = bearer(tenant_token(client, "acme"))
    assert all(g["management"] is None for g in client.get("/v1/gateways", headers=acme).json())
    assert client.get("/v1/gateways/gw-a", headers=acme).json()["management"] is None
    assert client.get("/v1/gateways/gw-a").json()["management"]["address"]


def test_a_tenant_reads_a_gateway_error_in_general_terms(client, seeded: Manager) -> None:  # type: ignore[no-untyped-def]
    from silonet.store.repo import Observation, Repository

    acme = bearer(tenant_token(client, "acme"))
    net = next(n for n in client.get("/v1/networks").json() if n["tenant"] == "acme")
    gw = net["attachments"][0]["gateways"][0]["gateway"]
    secret_error = "read-back differs: remote MAC 02:00:00:00:00:99 on VNI 10001 (cust-43)"
    with seeded.db.write() as (s, _gen):
        Repository(s).record(gw, Observation(reachable=True, realized_generation=None, error=secret_error))
    seen = client.get(f"/v1/networks/{net['name']}", headers=acme).text + client.get(
        "/v1/attachments", headers=acme).text
    assert "02:00:00:00:00:99" not in seen and "cust-43" not in seen and "shown to admins" in seen
    assert "02:00:00:00:00:99" in client.get(f"/v1/networks/{net['name']}").text


def test_token_writes_leave_the_intent_alone_and_the_admin_seed_is_idempotent(manager: Manager) -> None:
    from silonet.service.auth import Tokens
    from silonet.store.repo import Repository

    def generation() -> int:
        with manager.db.read() as s:
            return Repository(s).generation()

    tokens = Tokens(manager.db)
    before = generation()
    info, _secret = tokens.create("tenant", "acme", "", "admin")
    tokens.revoke(info.id, "admin")
    assert generation() == before  # no intent reload on any replica
    for secret in ("snt_first-admin-secret-xxxxxxxx", "snt_first-admin-secret-xxxxxxxx", "snt_second-admin-secret-y"):
        tokens.seed_admin(secret)
    env = [t for t in tokens.list() if t.created_by == "environment"]
    assert len(env) == 2  # one row per value, however often seeded; replicas may roll to a new value
    first = next(t for t in env if t.id == min(e.id for e in env))
    tokens.revoke(first.id, "admin")
    with pytest.raises(Exception, match="revoked"):
        tokens.seed_admin("snt_first-admin-secret-xxxxxxxx")  # a revoked secret does not come back
    assert tokens.verify("Bearer snt_second-admin-secret-y").admin


def test_a_switch_wide_refusal_told_to_a_tenant_hides_the_other_tenants_vni(client) -> None:  # type: ignore[no-untyped-def]
    """On a switch that maps VLAN<->VNI per switch, the refusal names the VNI a VLAN already
    carries; when that is another tenant's network's VNI, a tenant reads it not."""
    r = client.post("/v1/gateways", json={
        "name": "sw1", "vtep_ip": "198.18.0.11", "ports": [{"name": "Ethernet1"}, {"name": "Ethernet2"}],
        "management": {"driver": "ssh", "address": "admin@198.18.0.11", "dialect": "eos"}})
    assert r.status_code == 201, r.text
    for port, group in (("Ethernet1", "g1"), ("Ethernet2", "g2")):
        assert client.post("/v1/interface-groups", json={"name": group, "members": [
            {"gateway": "sw1", "port": port}]}).status_code == 201
    assert client.post("/v1/networks", json={"name": "globex-net", "tenant": "globex", "vni": 7777}).status_code == 201
    assert client.post("/v1/networks/globex-net/attachments", json={"interface_group": "g1", "vlan": 10}
                       ).status_code == 201
    acme = bearer(tenant_token(client, "acme"))
    assert client.post("/v1/networks", headers=acme, json={"name": "acme-net", "tenant": "acme", "vni": 8888}
                       ).status_code == 201
    r = client.post("/v1/networks/acme-net/attachments", headers=acme, json={"interface_group": "g2", "vlan": 10})
    assert r.status_code == 409 and r.json()["field"] == "vlan", r.text
    assert "7777" not in r.text and "globex" not in r.text and "VLAN 10" in r.json()["message"], r.text
    r = client.post("/v1/networks/acme-net/attachments", json={"interface_group": "g2", "vlan": 10})
    assert r.status_code == 409 and "VNI 7777" in r.json()["message"]  # the admin reads which
