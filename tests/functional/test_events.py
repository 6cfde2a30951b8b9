"""The event stream (GET /v1/events) under the real reconciler and API, on in-memory devices:
intent events for every audited change, attachment status changes (pending -> realized, realized
-> failed -> realized) announced once each with the network, group, VLAN, VNI and reason, gateway
condition changes, ids in commit order, resuming after Last-Event-ID, a tenant's token seeing its
own networks' events only (reasons in general terms), and a pruned id answered with an error event
telling the client to resync."""

from __future__ import annotations

import itertools
import json
import time

from fastapi.testclient import TestClient
from sqlalchemy import delete

from silonet.drivers.memory import FABRIC
from silonet.service import Manager
from silonet.store.tables import EventRow
from tests.api.test_auth import bearer, tenant_token


def read(client: TestClient, after: int | None = 0, limit: int = 1000, timeout: float = 3.0,
         headers: dict[str, str] | None = None) -> list[dict]:
    """Events of the stream as (id, event, data) dicts, bounded by ``limit`` and ``timeout``."""
    params: dict[str, object] = {"limit": limit, "timeout": timeout}
    hdrs = dict(headers or {})
    if after is not None:
        hdrs["Last-Event-ID"] = str(after)
    out, cur = [], {}
    with client.stream("GET", "/v1/events", params=params, headers=hdrs) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.read()
        for line in r.iter_lines():
            if not line:
                if cur:
                    out.append(cur)
                cur = {}
            elif line.startswith(":"):
                continue
            else:
                key, _, value = line.partition(": ")
                cur[key] = json.loads(value) if key == "data" else value
    return out


def until(client: TestClient, pred, timeout: float = 15.0) -> list[dict]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = read(client, 0, timeout=0.5)
        if pred(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_intent_and_status_changes_in_commit_order(memory_pair: TestClient) -> None:
    client = memory_pair
    assert client.post("/v1/networks", json={"name": "web", "tenant": "acme", "vni": 5000}).status_code == 201
    for g, vlan in (("g1", 100), ("g2", 200)):
        r = client.post("/v1/networks/web/attachments?wait=10", json={"interface_group": g, "vlan": vlan})
        assert r.status_code == 201 and r.json()["status"] == "realized", r.text

    def realized(evs: list[dict]) -> bool:
        return {(e["data"]["interface_group"], e["data"]["status"]) for e in evs
                if e["event"] == "attachment"} >= {("g1", "realized"), ("g2", "realized")}

    evs = until(client, realized)
    assert realized(evs), evs
    ids = [int(e["id"]) for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e["data"]["id"] == int(e["id"]) and e["data"]["type"] == e["event"] for e in evs)
    intents = [e["data"] for e in evs if e["event"] == "intent"]
    assert [(d["action"], d["object"]) for d in intents][-3:] == [
        ("create", "network/web"), ("attach", "network/web/attachments/g1/100"),
        ("attach", "network/web/attachments/g2/200")]
    attach = intents[-1]
    assert (attach["network"], attach["interface_group"], attach["vlan"], attach["vni"]) == ("web", "g2", 200, 5000)
    g1 = [e["data"] for e in evs if e["event"] == "attachment" and e["data"]["interface_group"] == "g1"]
    assert g1[-1]["status"] == "realized" and g1[-1]["vni"] == 5000 and g1[-1]["vlan"] == 100
    assert all(x["status"] != y["status"] for x, y in itertools.pairwise(g1))  # each change once, no repeats

    # resume after the last one seen: only what came after
    last = ids[-1]
    assert client.post("/v1/networks", json={"name": "db", "tenant": "other", "vni": 5001}).status_code == 201
    after = read(client, last, timeout=1.0)
    assert [e["data"]["object"] for e in after if e["event"] == "intent"] == ["network/db"]
    assert all(int(e["id"]) > last for e in after)


def test_a_gateway_down_is_announced_and_degrades_its_peers_attachment(memory_pair: TestClient) -> None:
    client = memory_pair
    assert client.post("/v1/networks", json={"name": "web", "tenant": "acme", "vni": 5000}).status_code == 201
    for g, vlan in (("g1", 100), ("g2", 200)):
        assert client.post("/v1/networks/web/attachments?wait=10", json={"interface_group": g, "vlan": vlan}
                           ).json()["status"] == "realized"
    start = int(until(client, lambda evs: any(e["event"] == "attachment" for e in evs))[-1]["id"])
    device = FABRIC.device("memory:gw-b")
    device.unreachable = "powered off"
    device.changed()

    def seen(evs: list[dict]) -> bool:
        return (any(e["event"] == "gateway" and e["data"]["condition"] == "unreachable" for e in evs)
                and any(e["event"] == "attachment" and e["data"]["status"] == "degraded" for e in evs))

    evs = read(client, start, timeout=0.5)
    deadline = time.monotonic() + 20
    while not seen(evs) and time.monotonic() < deadline:
        evs = read(client, start, timeout=0.5)
    assert seen(evs), evs
    gw = next(e["data"] for e in evs if e["event"] == "gateway")
    assert gw["gateway"] == "gw-b" and gw["reachable"] is False
    degraded = next(e["data"] for e in evs if e["event"] == "attachment" and e["data"]["status"] == "degraded")
    assert degraded["interface_group"] == "g1" and "'gw-b'" in degraded["reason"]

    # a tenant's token: its networks only, the reason in general terms
    token = tenant_token(client, "acme")
    mine = read(client, start, timeout=0.5, headers=bearer(token))
    assert mine and all(e["data"].get("network") == "web" for e in mine)
    assert all(e["event"] != "gateway" for e in mine)
    tenant_view = next(e["data"] for e in mine if e["event"] == "attachment" and e["data"]["status"] == "degraded")
    assert "gw-b" not in (tenant_view["reason"] or "") and "gateways" not in tenant_view


def test_a_pruned_id_asks_the_client_to_resync(memory_pair: TestClient, manager: Manager) -> None:
    client = memory_pair
    for n in range(3):
        assert client.post("/v1/networks", json={"name": f"n{n}", "tenant": "t", "vni": 6000 + n}).status_code == 201
    evs = read(client, 0, timeout=0.5)
    with manager.db.sessions() as s, s.begin():
        s.execute(delete(EventRow).where(EventRow.id <= int(evs[1]["id"])))
    gone = read(client, 0, timeout=0.5)
    assert len(gone) == 1 and gone[0]["event"] == "error" and "resync from /v1/export" in gone[0]["data"]["error"]
    kept = read(client, int(evs[1]["id"]), timeout=0.5)
    assert [e["id"] for e in kept] == [e["id"] for e in evs[2:]]
    r = client.get("/v1/events", headers={"Last-Event-ID": "x"})
    assert r.status_code == 422 and r.json()["field"] == "Last-Event-ID"


def test_changes_no_pass_records_are_announced_too(memory_pair: TestClient, manager: Manager) -> None:
    """An attach to a gateway that stays down (its worker records nothing new), a mode written by
    intent, and a status change after a failed write dropped the intent cache: each announced."""
    client = memory_pair
    assert client.post("/v1/networks", json={"name": "web", "tenant": "acme", "vni": 5000}).status_code == 201
    assert client.post("/v1/networks/web/attachments?wait=10", json={"interface_group": "g1", "vlan": 100}
                       ).json()["status"] == "realized"
    device = FABRIC.device("memory:gw-b")
    device.unreachable = "SECRET-DETAIL 198.18.9.9 powered off"
    device.changed()
    start = int(until(client, lambda evs: any(e["event"] == "gateway" for e in evs))[-1]["id"])
    r = client.post("/v1/networks/web/attachments?wait=5", json={"interface_group": "g2", "vlan": 200})
    assert r.status_code == 201 and r.json()["status"] == "failed", r.text

    def failed_announced(evs: list[dict]) -> bool:
        return any(e["event"] == "attachment" and e["data"]["interface_group"] == "g2"
                   and e["data"]["status"] == "failed" for e in evs)

    deadline = time.monotonic() + 15
    evs = read(client, start, timeout=0.5)
    while not failed_announced(evs) and time.monotonic() < deadline:
        evs = read(client, start, timeout=0.5)
    assert failed_announced(evs), evs
    mine = read(client, start, timeout=0.5, headers=bearer(tenant_token(client, "acme")))
    assert mine and not any("SECRET-DETAIL" in json.dumps(e["data"]) for e in mine), mine  # general terms only
    assert any("SECRET-DETAIL" in json.dumps(e["data"]) for e in evs)  # the admin reads the device's words

    last = int(evs[-1]["id"])
    r = client.patch("/v1/gateways/gw-a", json={"mode": "maintenance"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 15
    held: list[dict] = []
    while not held and time.monotonic() < deadline:
        held = [e for e in read(client, last, timeout=0.5)
                if e["event"] == "gateway" and e["data"]["condition"] == "held"]
    assert held and held[0]["data"]["gateway"] == "gw-a", held

    manager.runtime.intent.inventory = None  # as a failed (or dry-run) write leaves the cache
    last = max(int(e["id"]) for e in read(client, last, timeout=0.5) if "id" in e)
    device.unreachable = None
    device.changed()
    deadline = time.monotonic() + 15
    back: list[dict] = []
    while not back and time.monotonic() < deadline:
        back = [e for e in read(client, last, timeout=0.5)
                if e["event"] == "attachment" and e["data"]["interface_group"] == "g2"]
    assert back, "no attachment event after the intent cache was dropped"


def test_a_malformed_or_huge_last_event_id_is_a_422(memory_pair: TestClient) -> None:
    for bad in ("x", "9" * 5000, "-1"):
        r = memory_pair.get("/v1/events", headers={"Last-Event-ID": bad})
        assert r.status_code == 422 and r.json()["field"] == "Last-Event-ID", (bad[:10], r.text)
