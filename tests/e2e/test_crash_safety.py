"""Crash-safe apply: SIGKILL the manager at seeded points of a 1,000-attachment apply, restart it
on the same database, and every gateway ends at exactly the desired state, read with vtep-ctl.

Real components: vtep ovsdb-servers on loopback (bench.fleet.Fleet) and ``silonet serve`` as its
own process (bench.fleet.Server), killed by its pid, never by name. The intent is one database
transaction and each gateway's write one OVSDB transaction, so a kill leaves all or nothing of
each; the reconciler, level-triggered, finishes the job after the restart. Restarted under a new
replica name, the server waits for the killed one's gateway leases to expire (their TTL); under
the same name (``--replica-id``) it takes them back at once: the trials do both.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Fleet, Server
from silonet.devices.vtepdb import VtepDb, available
from tests.e2e.vtep_audit import Wanted, problems, read_tables
from tests.support.fleet import started_fleet

pytestmark = pytest.mark.ovs

TRIALS = 20
NETWORKS = 500  # x 2 groups, or 1,000 VLANs of one group: 1,000 attachments either way
CONVERGE_S = 30.0  # bound on one convergence; not a speed assert


@dataclass
class Shape:
    """One topology and what each of the fleet's gateways must then hold."""

    body: dict
    want: dict[str, Wanted]
    attachments: set[tuple[str, str, int]]  # (network, group, VLAN)


def two_groups(fleet: Fleet) -> Shape:
    """3 gateways; group ga on gw0/gw1, gb on gw1/gw2; 500 networks each in both groups."""
    gws, (a, b, c) = fleet.gateways(), fleet.dbs
    groups = [{"name": "ga", "members": [{"gateway": a.name, "port": "p1"}, {"gateway": b.name, "port": "p1"}]},
              {"name": "gb", "members": [{"gateway": b.name, "port": "p2"}, {"gateway": c.name, "port": "p1"}]}]
    nets = [{"name": f"n{k}", "tenant": "cs", "vni": 50000 + k,
             "attachments": [{"interface_group": "ga", "vlan": 1 + k}, {"interface_group": "gb", "vlan": 2001 + k}]}
            for k in range(NETWORKS)]
    switches = {f"n{k}": 50000 + k for k in range(NETWORKS)}
    ports = {a.name: [("p1", 1)], b.name: [("p1", 1), ("p2", 2001)], c.name: [("p1", 2001)]}
    want = {db.name: Wanted(switches, {(p, base + k): f"n{k}" for p, base in ports[db.name] for k in range(NETWORKS)},
                            {n: frozenset(o.tunnel_ip for o in fleet.dbs if o is not db) for n in switches})
            for db in fleet.dbs}
    atts = {(f"n{k}", g, v) for k in range(NETWORKS) for g, v in (("ga", 1 + k), ("gb", 2001 + k))}
    return Shape({"gateways": gws, "interface_groups": groups, "networks": nets}, want, atts)


def one_group(fleet: Fleet) -> Shape:
    """2 of the 3 gateways, one group on both, every VLAN 1..1000 its own network; gw2 stays empty."""
    a, b = fleet.dbs[:2]
    groups = [{"name": "all", "members": [{"gateway": a.name, "port": "p1"}, {"gateway": b.name, "port": "p1"}]}]
    nets = [{"name": f"v{v}", "tenant": "cs", "vni": 60000 + v, "attachments": [{"interface_group": "all", "vlan": v}]}
            for v in range(1, 2 * NETWORKS + 1)]
    switches = {f"v{v}": 60000 + v for v in range(1, 2 * NETWORKS + 1)}
    want = {db.name: Wanted(switches, {("p1", v): f"v{v}" for v in range(1, 2 * NETWORKS + 1)},
                            {n: frozenset({(b if db is a else a).tunnel_ip}) for n in switches}) for db in (a, b)}
    want[fleet.dbs[2].name] = Wanted()
    atts = {(f"v{v}", "all", v) for v in range(1, 2 * NETWORKS + 1)}
    return Shape({"gateways": fleet.gateways()[:2], "interface_groups": groups, "networks": nets}, want, atts)


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, headers=server.headers)


def sigkill(server: Server) -> None:
    """By the pid the server's own pid file names; reaped, so the pid cannot be reused under us."""
    pid = int(server.pidfile.read_text())
    os.kill(pid, signal.SIGKILL)
    assert server.proc is not None and server.proc.pid == pid
    server.proc.wait(timeout=10)
    server.pidfile.unlink()


def converge(http: httpx.Client, gateways: set[str]) -> float:
    """Seconds until every gateway of the topology realized its newest desired generation."""
    t0 = time.monotonic()
    rows: list[dict] = []
    while time.monotonic() - t0 < CONVERGE_S:
        rows = http.get("/v1/status").json()
        by = {r["gateway"]: r for r in rows}
        if set(by) == gateways and all(r["realized_generation"] >= r["desired_generation"] for r in rows):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"not converged within {CONVERGE_S:.0f} s: {rows}")


def intent(http: httpx.Client) -> tuple[int, int, int, set[tuple[str, str, int]]]:
    """Gateways, groups, networks and attachments the manager holds (all pages)."""
    atts: set[tuple[str, str, int]] = set()
    cursor = None
    for _ in range(100):
        page = http.get("/v1/attachments", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
        atts |= {(a["network"], a["interface_group"], a["vlan"]) for a in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return (len(http.get("/v1/gateways").json()), len(http.get("/v1/interface-groups").json()),
            len(http.get("/v1/networks").json()), atts)


def check_devices(fleet: Fleet, shape: Shape) -> None:
    found = {db.name: problems(read_tables(db), shape.want[db.name]) for db in fleet.dbs}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def devices_written(fleet: Fleet, shape: Shape) -> int:
    """How many of the shape's gateways hold any logical switch (each gateway's write is atomic)."""
    return sum(1 for db in fleet.dbs if shape.want[db.name].switches and db.ctl("list-ls").strip())


def writing_window(fleet: Fleet, shape: Shape) -> tuple[float, float]:
    """Seconds from now until the first and until the last gateway holds its switches."""
    t0, first = time.monotonic(), None
    gateways = sum(1 for w in shape.want.values() if w.switches)
    while time.monotonic() - t0 < CONVERGE_S:
        written = devices_written(fleet, shape)
        now = time.monotonic() - t0
        first = first if first is not None or not written else now
        if written == gateways:
            return first or now, now
    raise AssertionError(f"gateways not written within {CONVERGE_S:.0f} s")


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    with started_fleet(tmp_path / "fleet", 3, "cs") as f:
        yield f


@dataclass
class Trial:
    seed: int
    shape: str
    phase: str  # "request": killed while the apply request was in flight; "reconcile": after its answer
    at: float  # where in that phase's window (0..1)
    same_id: bool  # restarted under the killed replica's name (its leases at once), else a new one (after the TTL)
    kill_s: float = 0.0  # after the apply was sent
    committed: bool = False  # the apply had answered 200 before the kill
    written: int = 0  # gateways holding their switches at the kill
    converge_s: float = 0.0  # restart answering -> every gateway realized (intent read and retry included)


def draw(seed: int, shapes: dict[str, Shape]) -> Trial:
    rng = random.Random(seed)
    return Trial(seed, rng.choice(sorted(shapes)), "request" if rng.random() < 0.3 else "reconcile", rng.random(),
                 rng.random() < 0.5)


def prepare(t: Trial, server: Server) -> Server:
    """A fresh silonet database, under the replica name the trial restarts with."""
    server.replica_id = f"cs-{t.seed}" if t.same_id else None
    return server.start()


def crash(t: Trial, fleet: Fleet, server: Server, shape: Shape, window: tuple[float, float],
          requests: ThreadPoolExecutor) -> None:
    """On fresh vtep databases and a fresh server: apply, and SIGKILL the server at a seeded point."""
    delay = t.at * (window[0] if t.phase == "request" else window[1])
    fleet.stop()
    fleet.start()  # fresh vtep databases: cheaper than deleting 1,000 switches with vtep-ctl
    with client(server) as http:
        t0 = time.monotonic()
        answer = requests.submit(http.post, "/v1/apply", json=shape.body)
        if t.phase == "reconcile":
            assert answer.result(timeout=60).status_code == 200, answer.result().text
        time.sleep(delay)
        sigkill(server)
        t.kill_s = time.monotonic() - t0
        t.committed = answer.exception(timeout=60) is None and answer.result().status_code == 200
    t.written = devices_written(fleet, shape)


def recover(t: Trial, fleet: Fleet, server: Server, shape: Shape) -> None:
    """Restart on the same database: the intent is all or nothing, the client's retry and the
    reconciler end at exactly the desired state on every gateway."""
    gateways = {g["name"] for g in shape.body["gateways"]}
    server.start(keep_db=True)
    with client(server) as http:
        t1 = time.monotonic()
        held = intent(http)
        full = (len(gateways), len(shape.body["interface_groups"]), len(shape.body["networks"]), shape.attachments)
        assert held in (full, (0, 0, 0, set())), f"seed {t.seed}: intent half there: {held[:3]}, {len(held[3])} atts"
        assert held == full or not t.committed, f"seed {t.seed}: the apply answered 200, yet its intent is gone"
        again = http.post("/v1/apply", json=shape.body)  # the client's retry: the same end state either way
        assert again.status_code == 200, again.text
        assert bool(again.json()["changes"]) == (held != full), again.json()["changes"][:3]
        converge(http, gateways)
        t.converge_s = time.monotonic() - t1
    check_devices(fleet, shape)
    server.stop()


@pytest.mark.slow
def test_sigkill_during_apply_converges_exactly(fleet: Fleet, tmp_path: Path) -> None:
    servers = [Server(tmp_path / "server-a"), Server(tmp_path / "server-b")]  # one restarts while the other starts
    shapes = {"two_groups": two_groups(fleet), "one_group": one_group(fleet)}
    starter, requests = ThreadPoolExecutor(max_workers=1), ThreadPoolExecutor(max_workers=1)
    ready = None
    done: list[Trial] = []
    try:
        # The window, measured once on an apply nobody kills: the request, then the gateways' writes.
        server = servers[0].start()
        shape = shapes["two_groups"]
        with client(server) as http:
            t0 = time.monotonic()
            out = http.post("/v1/apply", json=shape.body)
            request_s = time.monotonic() - t0
            assert out.status_code == 200, out.text
            first_s, last_s = writing_window(fleet, shape)
            realized_s = converge(http, set(shape.want)) + last_s
        check_devices(fleet, shape)
        server.stop()
        print(f"\nwindow: the apply request took {request_s:.3f} s; after its answer the first gateway was "
              f"written at {first_s:.3f} s, the last at {last_s:.3f} s, all realized at {realized_s:.3f} s")
        trials = [draw(seed, shapes) for seed in range(TRIALS)]
        ready = starter.submit(prepare, trials[0], servers[0])
        for t in trials:
            server = ready.result(timeout=120)
            crash(t, fleet, server, shapes[t.shape], (request_s, 1.15 * last_s), requests)
            if t.seed + 1 < TRIALS:  # the next trial's server starts while this one recovers
                ready = starter.submit(prepare, trials[t.seed + 1], servers[(t.seed + 1) % 2])
            recover(t, fleet, server, shapes[t.shape])
            done.append(t)
            print(f"seed {t.seed:2d} {t.shape:10s} killed in the {t.phase:9s} at {t.kill_s:.3f} s, "
                  f"{'after' if t.committed else 'before'} the apply answered, {t.written} gateway(s) written; "
                  f"converged {t.converge_s:.2f} s after the restart ({'same' if t.same_id else 'new'} replica id)")
    finally:
        requests.shutdown(wait=False, cancel_futures=True)
        starter.shutdown(wait=True)  # a server still starting is stopped below, not left behind
        for server in servers:
            server.stop()
    conv = [t.converge_s for t in done]
    written = sorted({t.written for t in done})
    print(f"trials survived: {len(done)}/{TRIALS}; kill points (s after the apply was sent): "
          f"{', '.join(f'{t.kill_s:.3f}' for t in done)}")
    print(f"{sum(t.phase == 'request' for t in done)} kills during the request, {sum(not t.committed for t in done)} "
          f"before its answer; gateways written at the kill: "
          f"{', '.join(f'{w}: {sum(t.written == w for t in done)}' for w in written)}")
    print(f"convergence after restart: median {statistics.median(conv):.2f} s, max {max(conv):.2f} s; "
          + "; ".join(f"{label} replica id: median {statistics.median(v):.2f} s" for label, v in
                      (("same", [t.converge_s for t in done if t.same_id]),
                       ("new", [t.converge_s for t in done if not t.same_id])) if v))
    assert len(done) == TRIALS


def test_the_audit_sees_orphans_and_duplicates(tmp_path: Path) -> None:
    """The checker above, on rows vtep-ctl makes: a clean device passes, and each kind of harm is named."""
    if missing := available():
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing}); ./run test installs it")
    db = VtepDb(tmp_path / "gw", name="ps1", tunnel_ip="198.18.64.200").start()
    try:
        db.ctl("add-ls", "a", "--", "set", "Logical_Switch", "a", "tunnel_key=5001", "--",
               "bind-ls", "ps1", "p1", "10", "a", "--", "add-mcast-remote", "a", "unknown-dst", "198.18.64.201")
        want = Wanted({"a": 5001}, {("p1", 10): "a"}, {"a": frozenset({"198.18.64.201"})})
        assert problems(read_tables(db), want) == []
        ls = db.ctl("get", "Logical_Switch", "a", "_uuid").strip()
        loc = db.ctl("--bare", "--columns=_uuid", "find", "Physical_Locator", "dst_ip=198.18.64.201").strip()
        db.ctl("add-ls", "b", "--", "set", "Logical_Switch", "b", "tunnel_key=5001", "--",
               "--id=@s", "create", "Physical_Locator_Set", f"locators={loc}", "--",
               "create", "Mcast_Macs_Remote", "MAC=unknown-dst", f"logical_switch={ls}", "locator_set=@s")
        found = "\n".join(problems(read_tables(db), want))
        for harm in ("duplicate: 2 Logical_Switch rows for ('tunnel_key', 5001)", "orphan Logical_Switch b",
                     "duplicate: 2 Mcast_Macs_Remote rows for ('unknown-dst', 'a')",
                     "duplicate: 2 Physical_Locator_Set rows"):
            assert harm in found, found
    finally:
        db.stop()
