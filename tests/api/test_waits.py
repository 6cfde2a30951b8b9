"""Issue 16, from reading the code: a ``?wait=`` request holds no worker thread while it waits
(many of them in flight, the API still answers with a pool of a few threads), and one token may
have only SILONET_MAX_WAITS_PER_TOKEN of them in flight (429 past it, nothing written).

No reconciler runs here, so nothing realizes by itself: the waits stay in flight until the test
records a realization (``RealizationBoard.recorded``, what the reconciler calls after its commit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.config import Settings
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service.topology import parse_topology
from silonet.store.db import Database
from tests.conftest import ADMIN, ADMIN_TOKEN, EXAMPLE

THREADS = 4
GUARD_S = 60.0  # only bounds a hang on a broken build; no assert is about time


class Call(threading.Thread):
    """One request in its own thread (TestClient is synchronous)."""

    def __init__(self, send: Callable[[], httpx.Response]) -> None:
        super().__init__(daemon=True)
        self.send = send
        self.response: httpx.Response | None = None
        self.start()

    def run(self) -> None:
        self.response = self.send()


def _until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + GUARD_S
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _attachments(manager: Manager) -> int:
    return len(manager.inventory().attachments)


def _release(manager: Manager, calls: list[Call]) -> None:
    """Every gateway realized (as far as this process knows): the waits end."""
    manager.board.recorded({g: 2**31 for g in manager.inventory().gateways})
    for call in calls:
        call.join(GUARD_S)


def _app(db: Database, **settings: Any) -> Iterator[tuple[TestClient, Manager]]:
    manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10010), admin_token=ADMIN_TOKEN,
                                   **settings))
    manager.apply(parse_topology(EXAMPLE.read_text(), str(EXAMPLE)))
    with TestClient(create_app(manager), headers=ADMIN) as client:
        yield client, manager


@pytest.fixture
def api(db: Database) -> Iterator[tuple[TestClient, Manager]]:
    yield from _app(db)


@pytest.fixture
def capped(db: Database) -> Iterator[tuple[TestClient, Manager]]:
    yield from _app(db, max_waits_per_token=2)


def _attach(client: TestClient, vlan: int, wait: float, headers: dict | None = None) -> httpx.Response:
    return client.post(f"/v1/networks/cust-42/attachments?wait={wait}", headers=headers,
                       json={"interface_group": "vsa", "vlan": vlan})


def test_waiting_requests_hold_no_thread(api: tuple[TestClient, Manager]) -> None:
    client, manager = api

    def few_threads() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS

    assert client.portal is not None
    client.portal.call(few_threads)
    assert _attach(client, 1999, 0).status_code == 201
    before = _attachments(manager)
    n = 3 * THREADS
    waits = [Call(lambda v=v: _attach(client, 1000 + v, 300)) for v in range(n)]
    detach = None
    try:
        all_written = _until(lambda: _attachments(manager) == before + n)
        # a detach that waits too, then a plain read
        detach = Call(lambda: client.delete("/v1/networks/cust-42/attachments/vsa/1999?wait=300"))
        plain = Call(lambda: client.get("/v1/networks"))
        plain.join(GUARD_S)
        answered = plain.response is not None and plain.response.status_code == 200
        still_waiting = all(w.is_alive() for w in waits)
    finally:
        _release(manager, [*waits, *([detach] if detach else [])])
    assert all_written, "the writes of the waiting requests did not all get a thread"
    assert answered, "a plain GET did not answer while the waits were in flight"
    assert still_waiting, "a wait ended before the plain GET answered"
    assert all(w.response is not None and w.response.status_code == 201 for w in waits)
    assert all(w.response.json()["status"] == "pending" for w in waits if w.response)  # no realization recorded
    assert detach is not None and detach.response is not None and detach.response.status_code == 204


def test_a_token_has_a_bounded_number_of_waits_in_flight(capped: tuple[TestClient, Manager]) -> None:
    client, manager = capped
    r = client.post("/v1/tokens", json={"role": "tenant", "tenant": "acme", "description": "portal"})
    acme = {"Authorization": f"Bearer {r.json()['token']}"}
    before = _attachments(manager)
    waits = [Call(lambda v=v: _attach(client, 1000 + v, 300)) for v in range(2)]
    third = other = None
    try:
        both = _until(lambda: _attachments(manager) == before + 2)
        third = Call(lambda: _attach(client, 1002, 300))
        third.join(GUARD_S)
        # another token is not limited by this one's waits
        other = Call(lambda: _attach(client, 1003, 0.01, headers=acme))
        other.join(GUARD_S)
    finally:
        _release(manager, [*waits, *(c for c in (third, other) if c)])
    assert both
    assert third is not None and third.response is not None, "the third wait was not refused"
    assert third.response.status_code == 429, third.response.text
    message = ("this token already has 2 requests waiting (?wait=; SILONET_MAX_WAITS_PER_TOKEN is 2): "
               "retry when one ends, or without wait and poll the status")
    assert third.response.json() == {"error": "too_many_waits", "field": "wait", "message": message,
                                     "problems": [{"field": "wait", "message": message}]}
    assert other is not None and other.response is not None and other.response.status_code == 201
    vlans = {a["vlan"] for a in client.get("/v1/networks/cust-42/attachments").json()}
    assert 1002 not in vlans and {1000, 1001, 1003} <= vlans  # the refused request wrote nothing
    # the slots came back when the waits ended; a request without wait never takes one
    assert _attach(client, 1004, 0.01).status_code == 201
    assert _attach(client, 1005, 0).status_code == 201
