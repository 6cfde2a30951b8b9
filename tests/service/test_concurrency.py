"""Concurrent writers (issue 8): 100 parallel attaches of one (group, VLAN) into 100
different networks. Exactly one succeeds, 99 get a 409 that names the rule, and nothing of
the losers is left: one attachment row, one audit entry, one generation. On SQLite and on
PostgreSQL, through real ``silonet serve`` processes (one, and two replicas on one database)
and through several managers with their own engines in one process."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from silonet.bench.fleet import Server
from silonet.config import Settings
from silonet.errors import Conflict
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store.db import Database
from silonet.store.tables import AttachmentRow, AuditRow, GroupRow, Meta, NetworkRow

CALLERS = 100
GROUP, VLAN = "grp", 42
RULE = f"VLAN {VLAN} of interface group '{GROUP}' is already attached to network"


def topology() -> dict:
    """A silo, a gateway nobody dials (no reconciler), a group on it and 100 networks."""
    return {
        "silos": [{"name": "s1", "kind": "kvm"}],
        "gateways": [{"name": "gw1", "silo": "s1", "vtep_ip": "198.18.0.1", "capacity": 4096,
                      "management": {"driver": "ovsdb", "address": "tcp:198.18.1.1:6640"}, "ports": [{"name": "p1"}]}],
        "interface_groups": [{"name": GROUP, "silo": "s1", "members": [{"gateway": "gw1", "port": "p1"}]}],
        "networks": [{"name": f"net-{i}", "tenant": "t", "vni": 5000 + i} for i in range(CALLERS)],
    }


def state(url: str) -> tuple[list[tuple[str, str, int]], int, int]:
    """Attachment rows, attach audit entries and the generation, read from the database itself."""
    db = Database(url)
    try:
        with db.read() as s:
            rows = [tuple(r) for r in s.execute(
                select(NetworkRow.name, GroupRow.name, AttachmentRow.vlan)
                .join(NetworkRow, NetworkRow.id == AttachmentRow.network_id)
                .join(GroupRow, GroupRow.id == AttachmentRow.group_id))]
            audits = s.execute(select(func.count()).select_from(AuditRow)
                               .where(AuditRow.action == "attach")).scalar_one()
            generation = s.execute(select(Meta.generation)).scalar_one()
    finally:
        db.dispose()
    return rows, audits, generation


def check(outcomes: list[tuple[int, dict]], url: str, generation_before: int) -> None:
    statuses = Counter(status for status, _ in outcomes)
    assert statuses == {201: 1, 409: CALLERS - 1}, statuses
    for status, body in outcomes:
        if status == 409:
            assert body["error"] == "conflict" and body["field"] == "vlan" and RULE in body["message"], body
    winner = next(body for status, body in outcomes if status == 201)
    rows, audits, generation = state(url)
    assert rows == [(winner["network"], GROUP, VLAN)]
    assert audits == 1
    assert generation == generation_before + 1  # the losers wrote nothing, not even a generation


def race(post: list, barrier_timeout: float = 30.0) -> list[tuple[int, dict]]:
    """``post[i](i)`` from CALLERS threads released at once."""
    barrier = threading.Barrier(CALLERS)

    def one(i: int) -> tuple[int, dict]:
        barrier.wait(barrier_timeout)
        return post[i](i)

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(one, range(CALLERS)))


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2], ids=["one-server", "two-replicas"])
def test_parallel_attaches_of_one_vlan_through_the_api(database_url: str, tmp_path: Path, replicas: int) -> None:
    servers = [Server(tmp_path / f"srv{i}", reconcile=False, database_url=database_url) for i in range(replicas)]
    clients: list[httpx.Client] = []
    try:
        for srv in servers:  # one after the other: the first migrates the database
            srv.start()
        admin = httpx.Client(base_url=servers[0].url, headers=servers[0].headers, timeout=60)
        clients.append(admin)
        r = admin.post("/v1/apply", json=topology())
        assert r.status_code == 200, r.text
        generation_before = state(database_url)[2]
        # one pool per replica, a connection per caller (one client each: 60 ms of TLS setup apiece)
        clients += [httpx.Client(base_url=srv.url, headers=srv.headers, timeout=60,
                                 limits=httpx.Limits(max_connections=CALLERS)) for srv in servers]

        def post(i: int) -> tuple[int, dict]:
            r = clients[1 + i % replicas].post(f"/v1/networks/net-{i}/attachments",
                                               json={"interface_group": GROUP, "vlan": VLAN})
            return r.status_code, r.json()

        outcomes = race([post] * CALLERS)
        check(outcomes, database_url, generation_before)
        winner = next(body["network"] for status, body in outcomes if status == 201)
        for http in clients[1:]:  # every replica tells the same story afterwards
            items = http.get("/v1/attachments").json()["items"]
            assert [(a["network"], a["interface_group"], a["vlan"]) for a in items] == [(winner, GROUP, VLAN)]
    finally:
        for c in clients:
            c.close()
        for srv in servers:
            srv.stop()


def test_parallel_attaches_from_managers_with_their_own_engines(database_url: str) -> None:
    """Four managers, each with its own engine, cache and lock, as four processes would be:
    only the database serializes them."""
    managers = [Manager(Runtime(Database(database_url)), Settings(database_url=database_url, admin_token=None))
                for _ in range(4)]
    try:
        managers[0].db.upgrade()
        managers[0].apply(S.validate(S.Topology, topology()))
        generation_before = state(database_url)[2]
        for m in managers:
            m.list_networks()  # every cache warm at the same generation: the race is in the database

        def post(i: int) -> tuple[int, dict]:
            body = S.validate(S.AttachmentIn, {"interface_group": GROUP, "vlan": VLAN})
            try:
                out = managers[i % len(managers)].attach(f"net-{i}", body)
            except Conflict as e:
                return 409, {"error": e.code, "field": e.field, "message": e.message}
            return 201, {"network": out.network}

        check(race([post] * CALLERS), database_url, generation_before)
    finally:
        for m in managers:
            m.db.dispose()
