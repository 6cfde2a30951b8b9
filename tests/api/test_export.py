"""GET /v1/export (issue 21, "Export"): admins only, the shape POST /v1/apply takes, ?set= for one
apply set; POST /v1/apply of it changes nothing, and ?set=S&prune=true&force=true of one set's
export makes another server's set S the same; objects' own apply_set in POST /v1/apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store.db import Database
from tests.api.test_auth import bearer, tenant_token
from tests.conftest import ADMIN, ADMIN_TOKEN, Snapshot

LAB = {"networks": [{"name": "lab-1", "tenant": "lab", "attachments": [{"interface_group": "pad", "vlan": 42}]}]}


@pytest.fixture
def other(tmp_path: Path) -> Iterator[TestClient]:
    """A second server on a store of its own."""
    db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    db.upgrade()
    m = Manager(Runtime(db), Settings(database_url=db.url, admin_token=ADMIN_TOKEN))
    with TestClient(create_app(m), headers=ADMIN) as c:
        yield c
    db.dispose()


def changes(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    return r.json()["changes"]


def test_the_export_applied_back_changes_nothing(client: TestClient, seeded: Manager, snapshot: Snapshot) -> None:
    assert changes(client.post("/v1/apply?set=lab", json=LAB))
    assert client.post("/v1/networks", json={"name": "hand", "tenant": "acme"}).status_code == 201
    r = client.get("/v1/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    S.validate(S.Topology, data)  # the shape apply takes
    assert {n["name"]: n["apply_set"] for n in data["networks"]} == {"cust-42": "default", "cust-43": "default",
                                                                     "lab-1": "lab", "hand": ""}
    before = snapshot()
    assert changes(client.post("/v1/apply?dry_run=true", json=data)) == []
    assert changes(client.post("/v1/apply", json=data)) == []
    assert snapshot() == before
    assert client.get("/v1/export").json() == data


def test_one_sets_export_makes_another_servers_set_the_same(client: TestClient, seeded: Manager,
                                                            other: TestClient) -> None:
    assert changes(client.post("/v1/apply?set=lab", json=LAB))
    assert changes(other.post("/v1/apply", json=client.get("/v1/export?set=default").json()))
    stale = {"networks": [{"name": "lab-2", "tenant": "lab", "attachments": [{"interface_group": "pad", "vlan": 7}]}]}
    assert changes(other.post("/v1/apply?set=lab", json=stale))
    lab = client.get("/v1/export?set=lab").json()
    assert [n["name"] for n in lab["networks"]] == ["lab-1"] and lab["silos"] == lab["gateways"] == []
    assert changes(other.post("/v1/apply?set=lab&prune=true", json=lab))  # 2 deletions, 2 declared: allowed
    assert other.get("/v1/export?set=lab").json() == lab
    assert other.get("/v1/export").json() == client.get("/v1/export").json()


def test_a_tenant_may_not_export(client: TestClient, seeded: Manager) -> None:
    r = client.get("/v1/export", headers=bearer(tenant_token(client, "acme")))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "export" in r.json()["message"]
    assert client.get("/v1/export", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize("bad", ["-x", "a b", "x" * 65, ""])
def test_a_bad_set_name_is_refused(client: TestClient, bad: str) -> None:
    r = client.get("/v1/export", params={"set": bad})
    assert r.status_code == 422, r.text


def test_an_apply_naming_a_set_refuses_an_object_of_another(client: TestClient, seeded: Manager,
                                                             snapshot: Snapshot) -> None:
    data = client.get("/v1/export").json()
    before = snapshot()
    r = client.post("/v1/apply?set=lab", json=data)
    assert r.status_code == 422
    body = r.json()
    assert body["field"] == "silos[baremetal-c].apply_set"
    assert "'default' is not the apply set this apply names ('lab')" in body["message"]
    assert len(body["problems"]) == 19  # every object of the file
    assert snapshot() == before


def test_the_openapi_document_describes_the_export(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/export"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].split("/")[-1].startswith("Topology")
    assert [p["name"] for p in op["parameters"]] == ["set"]
    assert "403" in op["responses"]
    silo = doc["components"]["schemas"]["SiloApplyIn"]
    assert "apply_set" in silo["properties"] and silo["additionalProperties"] is False
