"""``/v1/webhooks``: create (201), list, read, delete (its deliveries go with it), the deliveries
page; refusals (422 naming the field and the rule, 404, 403 for a tenant token) write nothing;
the secret is a fenced reference whose value is never stored, answered, audited or logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from silonet.service import Manager
from silonet.service import webhooks as W
from silonet.store import events
from silonet.store.tables import DeliveryRow
from tests.api.test_auth import bearer, tenant_token
from tests.conftest import Snapshot

SECRET_ENV = "SILONET_SECRET_API_HOOK"
SECRET_VALUE = "api-hook-secret-value"
URL = "http://127.0.0.1:9/hook"  # never dialled: these apps run no dispatcher


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)


def create(client: TestClient, **body: Any) -> dict:
    r = client.post("/v1/webhooks", json={"url": URL, "secret": f"env:{SECRET_ENV}", **body})
    assert r.status_code == 201, r.text
    return r.json()


def publish(manager: Manager, n: int, type_: str = "attachment") -> list[int]:
    with manager.db.sessions() as s, s.begin():
        return events.publish(s, [events.Event(type_, {"network": f"n{i}"}) for i in range(n)])


def test_create_list_read_delete(client: TestClient, manager: Manager, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = create(client)
    assert made["url"] == URL and made["secret"] == f"env:{SECRET_ENV}" and made["created_by"] == "admin"
    assert made["events"] == list(events.EVENT_TYPES)  # default: every type
    only = create(client, events=["gateway", "attachment"])
    assert only["events"] == ["gateway", "attachment"]
    assert client.get("/v1/webhooks").json() == [made, only]
    assert client.get(f"/v1/webhooks/{made['id']}").json() == made
    assert client.delete(f"/v1/webhooks/{made['id']}").status_code == 204
    assert client.get("/v1/webhooks").json() == [only]
    assert client.get(f"/v1/webhooks/{made['id']}").status_code == 404
    audit = client.get("/v1/audit?limit=10").json()
    mine = [(a["action"], a["object"]) for a in audit if a["object"].startswith("webhook/")]
    assert mine == [("delete", f"webhook/{made['id']}"), ("create", f"webhook/{only['id']}"),
                    ("create", f"webhook/{made['id']}")]
    everything = json.dumps(audit) + caplog.text + json.dumps(client.get("/v1/webhooks").json())
    assert SECRET_VALUE not in everything


def test_deleting_a_webhook_deletes_its_deliveries(client: TestClient, manager: Manager) -> None:
    gone, kept = create(client, events=["attachment"]), create(client, events=["attachment"])
    publish(manager, 3)

    def count(webhook_id: int) -> int:
        with manager.db.read() as s:
            return s.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id))

    assert (count(gone["id"]), count(kept["id"])) == (3, 3)
    assert client.delete(f"/v1/webhooks/{gone['id']}").status_code == 204
    assert (count(gone["id"]), count(kept["id"])) == (0, 3)


def test_deliveries_newest_first_in_pages(client: TestClient, manager: Manager) -> None:
    w = create(client, events=["attachment"])
    ids = publish(manager, 5)
    r = client.get(f"/v1/webhooks/{w['id']}/deliveries", params={"limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [d["event_id"] for d in page] == ids[::-1][:2]
    first = page[0]
    assert set(first) == {"id", "event_id", "event_type", "state", "attempts", "created", "next_at"}
    assert (first["state"], first["attempts"], first["event_type"]) == ("pending", [], "attachment")
    assert first["next_at"] is not None
    rest = client.get(f"/v1/webhooks/{w['id']}/deliveries", params={"limit": 10, "before": page[-1]["id"]}).json()
    assert [d["event_id"] for d in rest] == ids[::-1][2:]


BAD_URLS = ["ftp://example.test/x", "http://", "example.test/hook", "http:///path", "http://user:pw@h.test/",
            "http://h.test/a b", "http://h.test:99999/", "http://h.test/\u00e9", "http://h.test/\n", "", 42,
            "https://h.test/" + "x" * W.URL_MAX, "javascript:alert(1)", "file:///etc/passwd"]


@pytest.mark.parametrize("url", BAD_URLS, ids=[repr(u)[:30] for u in BAD_URLS])
def test_a_bad_url_is_refused(client: TestClient, snapshot: Snapshot, url: object) -> None:
    before = snapshot()
    r = client.post("/v1/webhooks", json={"url": url, "secret": f"env:{SECRET_ENV}"})
    assert r.status_code == 422 and r.json()["field"] == "url", r.text
    assert snapshot() == before


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://portal.example.test/silonet?x=1",
                                 "HTTPS://Portal.Example.Test", "http://[::1]:9000/"])
def test_good_urls_are_taken(client: TestClient, url: str) -> None:
    r = client.post("/v1/webhooks", json={"url": url, "secret": f"env:{SECRET_ENV}"})
    assert r.status_code == 201 and r.json()["url"] == url, r.text


def test_bad_secrets_are_refused_without_echoing_them(client: TestClient, snapshot: Snapshot,
                                                      _own_secrets_dir: Path, tmp_path: Path) -> None:
    before = snapshot()
    for secret, says in (("hunter2-plain", "reference"), ("env:HOME", "SILONET_SECRET_"),
                         ("env:not a name hunter2", "variable name"),
                         (f"file:{tmp_path / 'k'}", "inside the secrets directory"),
                         (f"file:{_own_secrets_dir}/../k", "inside the secrets directory"),
                         ("", "at least 1"), ("x" * 300, "256"), (None, "string")):
        r = client.post("/v1/webhooks", json={"url": URL, "secret": secret})
        assert r.status_code == 422 and r.json()["field"] == "secret", (secret, r.text)
        assert says in r.json()["message"], (secret, r.text)
        assert "hunter2" not in r.text
    assert client.post("/v1/webhooks", json={"url": URL}).json()["field"] == "secret"
    assert snapshot() == before
    ok = client.post("/v1/webhooks", json={"url": URL, "secret": f"file:{_own_secrets_dir}/not-yet-there"})
    assert ok.status_code == 201, ok.text  # as gateway credentials: where it points is checked, not what is there


@pytest.mark.parametrize("types", [["nope"], [], ["intent", 3], "intent", ["Intent"], {"intent": 1},
                                   ["gateway", "intent", "gateway"]])
def test_bad_event_types_are_refused(client: TestClient, snapshot: Snapshot, types: object) -> None:
    before = snapshot()
    r = client.post("/v1/webhooks", json={"url": URL, "secret": f"env:{SECRET_ENV}", "events": types})
    assert r.status_code == 422 and r.json()["field"].startswith("events"), r.text
    assert snapshot() == before


def test_unknown_fields_are_refused(client: TestClient) -> None:
    r = client.post("/v1/webhooks", json={"url": URL, "secret": f"env:{SECRET_ENV}", "secret_value": "x"})
    assert r.status_code == 422 and r.json()["field"] == "secret_value", r.text


def test_unknown_ids_are_404(client: TestClient, snapshot: Snapshot) -> None:
    before = snapshot()
    for method, path in (("GET", "/v1/webhooks/7"), ("DELETE", "/v1/webhooks/7"),
                         ("GET", "/v1/webhooks/7/deliveries")):
        r = client.request(method, path)
        assert r.status_code == 404 and "webhook '7' does not exist" in r.json()["message"], r.text
    for path in ("/v1/webhooks/0", "/v1/webhooks/99999999999999999999", "/v1/webhooks/x",
                 "/v1/webhooks/1/deliveries?limit=0", "/v1/webhooks/1/deliveries?limit=1001",
                 "/v1/webhooks/1/deliveries?before=0"):
        assert client.get(path).status_code == 422, path
    assert snapshot() == before


def test_a_tenant_token_may_do_nothing_with_webhooks(client: TestClient, snapshot: Snapshot) -> None:
    w = create(client)
    tenant = bearer(tenant_token(client, "acme"))
    before = snapshot()
    for method, path, body in (("POST", "/v1/webhooks", {"url": URL, "secret": f"env:{SECRET_ENV}"}),
                               ("GET", "/v1/webhooks", None), ("GET", f"/v1/webhooks/{w['id']}", None),
                               ("DELETE", f"/v1/webhooks/{w['id']}", None),
                               ("GET", f"/v1/webhooks/{w['id']}/deliveries", None)):
        r = client.request(method, path, json=body, headers=tenant)
        assert r.status_code == 403 and "needs an admin token" in r.json()["message"], (method, path, r.text)
    assert snapshot() == before


def test_the_number_of_webhooks_is_bounded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(W, "WEBHOOKS_MAX", 2)
    create(client)
    create(client)
    r = client.post("/v1/webhooks", json={"url": URL, "secret": f"env:{SECRET_ENV}"})
    assert r.status_code == 409 and "at most 2 webhooks" in r.json()["message"], r.text


def test_the_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/v1/webhooks/{webhook_id}"]) == {"get", "delete"}
    assert set(paths["/v1/webhooks/{webhook_id}/deliveries"]) == {"get"}
