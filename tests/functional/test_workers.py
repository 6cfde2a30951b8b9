"""``silonet serve --workers 2``: one API front, two reconcile processes sharing the gateways by
lease, told of intent writes through their pipes (the model calls replayed, no reload) and
telling the front of their recordings (``?wait=`` answers from the front's board), on real vtep
ovsdb-servers read back with vtep-ctl. A worker killed is started again and the fabric keeps
being driven."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from silonet.bench.figures import children
from silonet.bench.fleet import Fleet, Server
from silonet.devices.vtepdb import available
from tests.e2e.test_replicas import until

pytestmark = pytest.mark.ovs
MISSING = available()


def _workers(pid: int) -> list[int]:
    """The front's child processes: its reconcile workers and nothing else (no resource tracker,
    each one a ``python -m silonet.workers`` of its own, not a copy of the front's main module)."""
    out = []
    for kid in children().get(pid, []):
        try:
            argv = Path(f"/proc/{kid}/cmdline").read_text().split("\0")
        except OSError:
            continue
        if argv == [""]:  # ended, not reaped yet (a killed worker)
            continue
        assert argv[1:3] == ["-m", "silonet.workers"], argv  # anything else is a process it should not have
        out.append(kid)
    return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Server, Fleet]]:
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING}); ./run test installs it")
    fleet = Fleet(tmp_path / "fleet", 4, ports=("p1",), prefix="tw").start()
    server = Server(tmp_path / "server", period=5.0)
    server.workers = 2
    try:
        server.start()
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
            yield http, server, fleet
    finally:
        server.stop()
        fleet.stop()


def _owners(server: Server) -> dict[str, str]:
    with sqlite3.connect(server.dir / "silonet.db") as c:
        return dict(c.execute("SELECT g.name, l.owner FROM gateway_leases l JOIN gateways g ON g.id = l.gateway_id "
                              "WHERE l.expires_at > strftime('%Y-%m-%d %H:%M:%f', 'now')"))


def test_two_worker_processes_share_the_gateways_and_realize_attaches(served) -> None:  # type: ignore[no-untyped-def]
    http, server, fleet = served
    assert server.proc is not None
    kids = until(lambda: _workers(server.proc.pid) if len(_workers(server.proc.pid)) == 2 else None,
                  30, "two reconcile worker processes")
    gws = fleet.gateways()
    groups = [{"name": f"g{i}", "members": [{"gateway": g["name"], "port": "p1"}]} for i, g in enumerate(gws)]
    r = http.post("/v1/apply", params={"wait": 30}, json={"gateways": gws, "interface_groups": groups})
    assert r.status_code == 200, r.text
    def shared() -> dict[str, str] | None:
        owners = _owners(server)
        return owners if len(owners) == 4 and len(set(owners.values())) == 2 else None

    owners = until(shared, 30, "the four gateways leased by two workers")
    assert not {o.split("-")[-2] for o in owners.values()} & {str(server.proc.pid)}  # none by the front itself
    for i in range(3):
        assert http.post("/v1/networks", json={"name": f"n{i}", "tenant": "t", "vni": 7000 + i}).status_code == 201
        for g in ("g0", "g1", "g2", "g3"):
            r = http.post(f"/v1/networks/n{i}/attachments", params={"wait": 30},
                          json={"interface_group": g, "vlan": 100 + i})
            assert r.status_code == 201, r.text
        assert r.json()["status"] == "realized", r.json()  # the last one: all four gateways carry n{i}
    for db in fleet.dbs:
        bindings = db.ctl("list-bindings", db.name, "p1").split()
        assert bindings == ["0100", "n0", "0101", "n1", "0102", "n2"], (db.name, bindings)
        assert "vxlan_over_ipv4" in db.ctl("list-remote-macs", "n2")

    # /metrics: the children's reconcile series, merged, as one process would show them
    r = http.get("/metrics")
    assert r.status_code == 200, r.text
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for f in text_string_to_metric_families(r.text) for s in f.samples}
    assert samples[("silonet_reconcile_workers", frozenset())] == 2
    assert samples[("silonet_reconcile_workers_answered", frozenset())] == 2
    for g in gws:  # each from the child that holds it
        assert samples[("silonet_gateway_reconcile_passes_total", frozenset({("gateway", g["name"])}))] >= 1
        assert samples[("silonet_gateway_up", frozenset({("gateway", g["name"])}))] == 1
    binds = samples[("silonet_reconcile_operations_total", frozenset({("kind", "bind")}))]
    assert binds >= 12  # 3 VLANs x 4 gateways

    # A worker dies: the front starts another; its gateways are taken over and kept driven.
    victim = kids[0]
    os.kill(victim, signal.SIGKILL)
    until(lambda: len([k for k in _workers(server.proc.pid) if k != victim]) == 2, 30,
           "the killed worker started again")
    r = http.post("/v1/networks", json={"name": "n9", "tenant": "t", "vni": 7009})
    assert r.status_code == 201
    for g in ("g0", "g1", "g2", "g3"):
        r = http.post("/v1/networks/n9/attachments", params={"wait": 40}, json={"interface_group": g, "vlan": 109})
        assert r.status_code == 201, r.text
    assert r.json()["status"] == "realized", r.json()
    for db in fleet.dbs:
        assert "0109" in db.ctl("list-bindings", db.name, "p1").split()
    log = (server.dir / "server.log").read_text()
    assert "reconcile worker 0 ended" in log or "reconcile worker 1 ended" in log
    # the killed worker's totals stay in the merged series: a total that fell would read as a reset
    r = http.get("/metrics")
    after = {(s.name, frozenset(s.labels.items())): s.value
             for f in text_string_to_metric_families(r.text) for s in f.samples}
    assert after[("silonet_reconcile_operations_total", frozenset({("kind", "bind")}))] >= binds + 4
    assert after[("silonet_reconcile_workers_answered", frozenset())] == 2
