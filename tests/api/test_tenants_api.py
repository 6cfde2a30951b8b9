"""``/v1/tenants`` and what a record holds a tenant token to, through the API: every refusal (403,
404, 409, 422) names its field and rule and writes nothing; admins are never limited; a tenant
without a record keeps today's behaviour. On the example inventory (groups vsa, kvb, bmc, pad;
cust-42 is acme's, VNI 5000; cust-43 globex's, allocated 10000; the pool is 10000-10009), no
reconciler."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from silonet.service import Manager
from tests.api.test_auth import bearer, tenant_token
from tests.conftest import Snapshot

ACME = {"name": "acme", "interface_groups": ["vsa", "kvb"], "vni_pool": {"first": 20000, "last": 20002},
        "max_networks": 3, "max_attachments": 5}


@pytest.fixture
def api(client: TestClient, seeded: Manager) -> TestClient:
    return client


@pytest.fixture
def acme(api: TestClient) -> dict[str, str]:
    """acme's record (ACME) and a token of acme's."""
    r = api.post("/v1/tenants", json=ACME)
    assert r.status_code == 201, r.text
    return bearer(tenant_token(api, "acme"))


def refused(api: TestClient, snapshot: Snapshot, status: int, field: str, words: str, method: str, path: str,
            headers: dict[str, str] | None = None, **kw: Any) -> dict:
    """The request is refused with ``status`` naming ``field`` and the rule (``words``), and writes nothing."""
    before = snapshot()
    r = api.request(method, path, headers=headers, **kw)
    assert r.status_code == status, (method, path, r.status_code, r.text)
    body = r.json()
    assert body["field"] == field and words in body["message"], body
    assert snapshot() == before, f"{method} {path} wrote something"
    return body


def test_a_record_is_created_read_listed_and_audited(api: TestClient) -> None:
    r = api.post("/v1/tenants", json=ACME)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out == {"name": "acme", "interface_groups": ["kvb", "vsa"], "vni_pool": {"first": 20000, "last": 20002},
                   "max_networks": 3, "max_attachments": 5, "use": {"networks": 1, "attachments": 3}}
    assert api.get("/v1/tenants/acme").json() == out
    r = api.post("/v1/tenants", json={"name": "globex"})  # every field but the name is optional
    assert r.status_code == 201 and r.json() == {"name": "globex", "interface_groups": [], "vni_pool": None,
                                                 "max_networks": None, "max_attachments": None,
                                                 "use": {"networks": 1, "attachments": 2}}
    assert [t["name"] for t in api.get("/v1/tenants").json()] == ["acme", "globex"]
    entry = api.get("/v1/audit?limit=2").json()[1]
    assert (entry["actor"], entry["action"], entry["object"], entry["before"]) == \
        ("admin", "tenant.create", "tenant/acme", None)
    assert entry["after"] == {k: v for k, v in out.items() if k != "use"}


def test_a_merge_patch_changes_members_null_removes_and_an_unchanged_one_writes_nothing(
        api: TestClient, acme: dict, snapshot: Snapshot) -> None:
    merge = {"Content-Type": "application/merge-patch+json"}
    r = api.patch("/v1/tenants/acme", content=b'{"vni_pool": {"last": 20099}, "max_networks": null, '
                                              b'"interface_groups": ["pad"]}', headers=merge)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["vni_pool"], out["max_networks"], out["max_attachments"], out["interface_groups"]) == \
        ({"first": 20000, "last": 20099}, None, 5, ["pad"])
    entry = api.get("/v1/audit?limit=1").json()[0]
    assert (entry["action"], entry["before"]["max_networks"], entry["after"]["max_networks"]) == \
        ("tenant.update", 3, None)
    r = api.patch("/v1/tenants/acme", json={"vni_pool": None, "interface_groups": None})
    assert r.status_code == 200 and (r.json()["vni_pool"], r.json()["interface_groups"]) == (None, [])
    before = snapshot()
    for same in ({}, {"name": "acme"}, {"max_attachments": 5}):
        assert api.patch("/v1/tenants/acme", json=same).status_code == 200
    assert snapshot() == before  # not even the generation moved


def test_deleting_a_record_is_refused_while_the_tenant_has_networks(api: TestClient, acme: dict,
                                                                    snapshot: Snapshot) -> None:
    body = refused(api, snapshot, 409, "name", "tenant 'acme' is still used by 1 network(s): 'cust-42'",
                   "DELETE", "/v1/tenants/acme")
    assert body["error"] == "in_use"
    assert api.delete("/v1/networks/cust-42?cascade=true").status_code == 204
    assert api.delete("/v1/tenants/acme").status_code == 204
    assert api.get("/v1/tenants/acme").status_code == 404
    entry = api.get("/v1/audit?limit=1").json()[0]
    assert (entry["action"], entry["object"], entry["after"]) == ("tenant.delete", "tenant/acme", None)
    assert entry["before"]["interface_groups"] == ["kvb", "vsa"]
    with api.app.state.manager.db.engine.connect() as conn:  # its grants went with it
        from sqlalchemy import text
        assert conn.execute(text("SELECT count(*) FROM tenant_groups")).scalar_one() == 0


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"name": "-acme"}, "name", "must start with a letter or a digit"),
    ({"name": "a b"}, "name", "must be 1..64 characters"),
    ({"name": "acme", "vni_pool": {"first": 300, "last": 200}}, "vni_pool", "first (300) must not exceed last (200)"),
    ({"name": "acme", "vni_pool": {"first": 0, "last": 200}}, "vni_pool.first", "VNI must be an integer 1..16777215"),
    ({"name": "acme", "vni_pool": {"first": 1, "last": 16777216}}, "vni_pool.last", "1..16777215"),
    ({"name": "acme", "vni_pool": {"first": 1}}, "vni_pool.last", "Field required"),
    ({"name": "acme", "max_networks": -1}, "max_networks", "must be an integer 0..2147483647 (null: no limit)"),
    ({"name": "acme", "max_attachments": "3"}, "max_attachments", "integer"),
    ({"name": "acme", "max_attachments": True}, "max_attachments", "integer"),
    ({"name": "acme", "max_networks": 2147483648}, "max_networks", "0..2147483647"),
    ({"name": "acme", "interface_groups": ["vsa", "vsa"]}, "interface_groups", "listed twice: vsa"),
    ({"name": "acme", "quota": 3}, "quota", "unknown field"),
])
def test_bad_bodies_are_422_naming_the_field(api: TestClient, snapshot: Snapshot, body: dict, field: str,
                                             words: str) -> None:
    refused(api, snapshot, 422, field, words, "POST", "/v1/tenants", json=body)


def test_stored_state_refusals_name_the_group_and_the_other_tenant(api: TestClient, acme: dict,
                                                                  snapshot: Snapshot) -> None:
    body = refused(api, snapshot, 404, "interface_groups", "interface group 'rack9' does not exist (tenant 'globex' "
                   "is granted it)", "POST", "/v1/tenants",
                   json={"name": "globex", "interface_groups": ["pad", "rack9", "zz"],
                         "vni_pool": {"first": 20002, "last": 20010}})
    assert [p["field"] for p in body["problems"]] == ["interface_groups", "interface_groups", "vni_pool"]
    assert "VNI pool 20002-20010 overlaps the VNI pool 20000-20002 of tenant 'acme'" in body["problems"][2]["message"]
    refused(api, snapshot, 409, "vni_pool", "overlaps the VNI pool 20000-20002 of tenant 'acme'", "POST",
            "/v1/tenants", json={"name": "globex", "vni_pool": {"first": 19000, "last": 20000}})
    refused(api, snapshot, 409, "name", "tenant 'acme' already has a record", "POST", "/v1/tenants", json=ACME)
    refused(api, snapshot, 404, "name", "tenant 'nobody' does not exist", "PATCH", "/v1/tenants/nobody", json={})
    refused(api, snapshot, 404, "name", "tenant 'nobody' does not exist", "DELETE", "/v1/tenants/nobody")
    refused(api, snapshot, 422, "name", "cannot change", "PATCH", "/v1/tenants/acme", json={"name": "acme2"})
    refused(api, snapshot, 422, "vni_pool", "first (20000) must not exceed last (5)", "PATCH", "/v1/tenants/acme",
            json={"vni_pool": {"last": 5}})
    refused(api, snapshot, 404, "interface_groups", "interface group 'nope'", "PATCH", "/v1/tenants/acme",
            json={"interface_groups": ["nope"]})
    assert api.post("/v1/tenants", json={"name": "globex", "vni_pool": {"first": 20003, "last": 20010}}
                    ).status_code == 201  # next to acme's: fine
    refused(api, snapshot, 409, "vni_pool", "tenant 'globex'", "PATCH", "/v1/tenants/acme",
            json={"vni_pool": {"last": 20003}})


def test_a_tenant_token_reads_its_own_record_only_and_writes_none(api: TestClient, acme: dict,
                                                                  snapshot: Snapshot) -> None:
    assert api.post("/v1/tenants", json={"name": "globex"}).status_code == 201
    mine = api.get("/v1/tenants/acme", headers=acme)
    assert mine.status_code == 200 and mine.json() == api.get("/v1/tenants/acme").json()
    assert [t["name"] for t in api.get("/v1/tenants", headers=acme).json()] == ["acme"]
    refused(api, snapshot, 404, "name", "tenant 'globex' does not exist", "GET", "/v1/tenants/globex", acme)
    initech = bearer(tenant_token(api, "initech"))  # no record: nothing to read
    assert api.get("/v1/tenants", headers=initech).json() == []
    refused(api, snapshot, 404, "name", "tenant 'initech' does not exist", "GET", "/v1/tenants/initech", initech)
    for method, path, body in (("POST", "/v1/tenants", {"name": "acme2"}), ("PATCH", "/v1/tenants/acme", {}),
                               ("DELETE", "/v1/tenants/acme", None)):
        err = refused(api, snapshot, 403, None, "needs an admin token (this token is tenant 'acme')", method, path,
                      acme, json=body)
        assert err["error"] == "forbidden"


def test_a_tenant_token_attaches_only_to_granted_groups(api: TestClient, acme: dict, snapshot: Snapshot) -> None:
    refused(api, snapshot, 403, "interface_group", "tenant 'acme' is not granted interface group 'bmc' "
            "(its interface_groups: kvb, vsa)", "POST", "/v1/networks/cust-42/attachments", acme,
            json={"interface_group": "bmc", "vlan": 301})
    r = api.post("/v1/networks/cust-42/attachments", headers=acme, json={"interface_group": "kvb", "vlan": 2101})
    assert r.status_code == 201, r.text
    refused(api, snapshot, 404, "interface_group", "interface group 'rack9' does not exist", "POST",
            "/v1/networks/cust-42/attachments", acme, json={"interface_group": "rack9", "vlan": 1})
    assert api.patch("/v1/tenants/acme", json={"interface_groups": None}).status_code == 200
    refused(api, snapshot, 403, "interface_group", "(its interface_groups: none)", "POST",
            "/v1/networks/cust-42/attachments", acme, json={"interface_group": "vsa", "vlan": 101})


def test_a_tenant_token_is_refused_past_its_quotas(api: TestClient, acme: dict, snapshot: Snapshot) -> None:
    for name in ("n1", "n2"):
        assert api.post("/v1/networks", headers=acme, json={"name": name, "tenant": "acme"}).status_code == 201
    refused(api, snapshot, 403, "max_networks", "tenant 'acme' may hold at most 3 network(s) (its max_networks) and "
            "holds 3", "POST", "/v1/networks", acme, json={"name": "n3", "tenant": "acme"})
    for vlan in (101, 102):  # cust-42 holds 3 already: 5 is the limit
        r = api.post("/v1/networks/n1/attachments", headers=acme, json={"interface_group": "vsa", "vlan": vlan})
        assert r.status_code == 201, r.text
    body = refused(api, snapshot, 403, "interface_group", "not granted interface group 'pad'", "POST",
                   "/v1/networks/n1/attachments", acme, json={"interface_group": "pad", "vlan": 7})
    assert body["problems"][1]["field"] == "max_attachments"  # both rules at once
    refused(api, snapshot, 403, "max_attachments", "at most 5 attachment(s) (its max_attachments) and holds 5",
            "POST", "/v1/networks/n1/attachments", acme, json={"interface_group": "vsa", "vlan": 103})
    assert api.delete("/v1/networks/n1/attachments/vsa/101", headers=acme).status_code == 204  # room again
    assert api.post("/v1/networks/n1/attachments", headers=acme,
                    json={"interface_group": "vsa", "vlan": 103}).status_code == 201
    assert api.get("/v1/tenants/acme", headers=acme).json()["use"] == {"networks": 3, "attachments": 5}
    assert api.patch("/v1/tenants/acme", json={"max_networks": 0}).status_code == 200  # below its use: 403 from now
    refused(api, snapshot, 403, "max_networks", "at most 0 network(s)", "POST", "/v1/networks", acme,
            json={"name": "n9", "tenant": "acme"})


def test_a_tenant_token_takes_vnis_from_its_pool(api: TestClient, acme: dict, snapshot: Snapshot) -> None:
    assert api.patch("/v1/tenants/acme", json={"max_networks": None}).status_code == 200
    made = [api.post("/v1/networks", headers=acme, json={"name": f"p{i}", "tenant": "acme"}) for i in range(2)]
    assert [r.json()["vni"] for r in made] == [20000, 20001]
    refused(api, snapshot, 403, "vni", "VNI 5001 is outside the VNI pool 20000-20002 of tenant 'acme'", "POST",
            "/v1/networks", acme, json={"name": "x", "tenant": "acme", "vni": 5001})
    r = api.post("/v1/networks", headers=acme, json={"name": "p2", "tenant": "acme", "vni": 20002})
    assert r.status_code == 201 and r.json()["vni"] == 20002
    refused(api, snapshot, 409, "vni", "the VNI pool 20000-20002 is exhausted", "POST", "/v1/networks", acme,
            json={"name": "p3", "tenant": "acme"})


def test_without_a_pool_a_recorded_tenant_may_not_take_another_tenants_vni(api: TestClient, acme: dict,
                                                                         snapshot: Snapshot) -> None:
    assert api.post("/v1/tenants", json={"name": "globex", "interface_groups": ["pad"]}).status_code == 201
    globex = bearer(tenant_token(api, "globex"))
    body = refused(api, snapshot, 403, "vni", "VNI 20001 is reserved (it lies in another tenant's VNI pool)", "POST",
                   "/v1/networks", globex, json={"name": "g1", "tenant": "globex", "vni": 20001})
    assert "acme" not in body["message"]
    r = api.post("/v1/networks", headers=globex, json={"name": "g1", "tenant": "globex", "vni": 7777})
    assert r.status_code == 201, r.text
    r = api.post("/v1/networks", headers=globex, json={"name": "g2", "tenant": "globex"})
    assert r.status_code == 201 and r.json()["vni"] == 10001  # the global pool (10000 is cust-43's)


def test_tenants_without_a_record_and_admins_are_not_limited(api: TestClient, acme: dict) -> None:
    initech = bearer(tenant_token(api, "initech"))
    r = api.post("/v1/networks", headers=initech, json={"name": "i1", "tenant": "initech", "vni": 20001})
    assert r.status_code == 201, r.text  # today's behaviour: any free VNI, any group
    assert api.post("/v1/networks/i1/attachments", headers=initech,
                    json={"interface_group": "bmc", "vlan": 9}).status_code == 201
    for i in range(4):  # past acme's quota, outside its pool, on a group it is not granted: an admin may
        r = api.post("/v1/networks", json={"name": f"a{i}", "tenant": "acme", "vni": 30000 + i})
        assert r.status_code == 201, r.text
    assert api.post("/v1/networks/a0/attachments", json={"interface_group": "bmc", "vlan": 10}).status_code == 201
    assert api.get("/v1/tenants/acme").json()["use"] == {"networks": 5, "attachments": 4}


def test_the_global_pool_never_allocates_inside_a_tenants_pool(api: TestClient) -> None:
    r = api.post("/v1/tenants", json={"name": "acme", "vni_pool": {"first": 10001, "last": 10004}})
    assert r.status_code == 201, r.text
    initech = bearer(tenant_token(api, "initech"))
    made = api.post("/v1/networks", headers=initech, json={"name": "i1", "tenant": "initech"})
    assert made.json()["vni"] == 10005  # 10000: cust-43; 10001-10004: acme's
    assert api.post("/v1/networks", json={"name": "x1", "tenant": "globex"}).json()["vni"] == 10006  # an admin's
    # a network of acme's given no VNI takes it from acme's pool, whoever creates it (apply too)
    assert api.post("/v1/networks", json={"name": "a1", "tenant": "acme"}).json()["vni"] == 10001
    topo = {"networks": [{"name": "a2", "tenant": "acme"}, {"name": "x2", "tenant": "globex"}]}
    r = api.post("/v1/apply?set=more", json=topo)
    assert r.status_code == 200, r.text
    vnis = {n["name"]: n["vni"] for n in api.get("/v1/networks").json()}
    assert (vnis["a2"], vnis["x2"]) == (10002, 10007)
    assert api.patch("/v1/tenants/acme", json={"vni_pool": {"first": 10003, "last": 10009}}).status_code == 200
    r = api.post("/v1/networks", json={"name": "x3", "tenant": "globex"})
    assert r.status_code == 409 and "the VNI pool 10000-10009 is exhausted outside the tenants' VNI pools" in \
        r.json()["message"]


def test_deleting_a_granted_group_takes_it_out_of_the_grants(api: TestClient) -> None:
    assert api.post("/v1/tenants", json={"name": "acme", "interface_groups": ["bmc", "pad"]}).status_code == 201
    assert api.delete("/v1/networks/cust-42/attachments/bmc/300").status_code == 204
    assert api.delete("/v1/interface-groups/bmc").status_code == 204
    assert api.get("/v1/tenants/acme").json()["interface_groups"] == ["pad"]


def test_the_openapi_describes_the_tenant_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/tenants"]) == {"get", "post"}
    assert set(paths["/v1/tenants/{name}"]) == {"get", "patch", "delete"}
    assert "application/merge-patch+json" in paths["/v1/tenants/{name}"]["patch"]["requestBody"]["content"]
    assert {"401", "403", "404", "409", "422"} <= set(paths["/v1/tenants/{name}"]["patch"]["responses"])
