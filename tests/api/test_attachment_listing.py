"""GET /v1/attachments: pages that follow next_cursor, filters, and 422/404 bodies that name
the field."""

from __future__ import annotations

from typing import Any

import pytest

from silonet.service import Manager


def get(client: Any, status: int = 200, **params: Any) -> dict:
    r = client.get("/v1/attachments", params=params)
    assert r.status_code == status, r.text
    return r.json()


def test_default_page(client: Any, seeded: Manager) -> None:
    body = get(client)
    assert set(body) == {"items", "next_cursor", "limit"}
    assert body["limit"] == 100 and body["next_cursor"] is None
    assert [(a["network"], a["interface_group"], a["vlan"]) for a in body["items"]] == [
        ("cust-42", "vsa", 100), ("cust-42", "kvb", 2100), ("cust-42", "bmc", 300), ("cust-43", "kvb", 2200),
        ("cust-43", "pad", 0)]
    first = body["items"][0]
    assert first["status"] == "pending" and first["vni"] == 5000
    assert first in client.get("/v1/networks/cust-42").json()["attachments"]


def test_following_next_cursor(client: Any, seeded: Manager) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        body = get(client, limit=2, **({"cursor": cursor} if cursor else {}))
        pages += 1
        assert body["limit"] == 2 and len(body["items"]) <= 2
        seen += [(a["interface_group"], a["vlan"]) for a in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor.isascii()
    assert pages == 3 and len(seen) == len(set(seen)) == 5


def test_filters(client: Any, seeded: Manager) -> None:
    body = get(client, network="cust-43")
    assert [(a["interface_group"], a["vlan"]) for a in body["items"]] == [("kvb", 2200), ("pad", 0)]
    body = get(client, interface_group="kvb", limit=1)
    assert [a["vlan"] for a in body["items"]] == [2100] and body["next_cursor"]
    body = get(client, interface_group="kvb", limit=1, cursor=body["next_cursor"])
    assert [a["vlan"] for a in body["items"]] == [2200] and body["next_cursor"] is None
    assert get(client, network="cust-42", interface_group="pad")["items"] == []


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"limit": 0}, 422, "limit"),
    ({"limit": 1001}, 422, "limit"),
    ({"limit": "many"}, 422, "limit"),
    ({"cursor": "not-a-cursor"}, 422, "cursor"),
    ({"cursor": "eyJhZnRlciI6LTF9"}, 422, "cursor"),  # {"after":-1}
    ({"cursor": "x" * 1000}, 422, "cursor"),
    ({"network": "no spaces"}, 422, "network"),
    ({"interface_group": ""}, 422, "interface_group"),
    ({"network": "nope"}, 404, "network"),
    ({"interface_group": "nope"}, 404, "interface_group"),
])
def test_bad_parameters(client: Any, seeded: Manager, params: dict, status: int, field: str) -> None:
    body = get(client, status, **params)
    assert set(body) == {"error", "field", "message", "problems"}
    assert body["error"] == ("invalid" if status == 422 else "not_found")
    assert body["field"] == field, body


def test_in_the_openapi_document(client: Any) -> None:
    op = client.get("/openapi.json").json()["paths"]["/v1/attachments"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"limit", "cursor", "network", "interface_group"}
