"""`silonet bench control`'s ``scale`` section: one ``silonet serve`` holding 1,000 gateways.

The store is written first (``silonet apply`` on the server's own SQLite, no reconciler), so the
converge figure is a manager's start on a full store: 1,000 real vtep ``ovsdb-server``s in
groups of 5, as many networks each attached to 20 groups (each VNI on 100 gateways, each
gateway about 100 VNIs). Then, with every gateway converged: the serve process tree's RSS, its
CPU while nothing changes (once the converge's tail, its last records and announcements, stopped
falling: ``settle``), and attach latency on 10 gateways while 1,000 are held. The CPU the converge
cost, the manager's and the devices', is beside the converge figure: against the machine's cores,
the floor under it.

Loops are bounded and never raise on a slow manager: a figure that could not be measured is
None with the reason beside it, so the report is still written. Everything started here is
stopped by its pid file in a ``finally``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.progress import Progress

from silonet import limits
from silonet.bench import lifecycle
from silonet.bench.figures import cpu_s, pct, progress, tree, tree_cpu_s, tree_rss_mib
from silonet.bench.fleet import Fleet, Server
from silonet.devices import postgres
from silonet.devices.vtepdb import VtepDb, free_port

if TYPE_CHECKING:
    from silonet.bench.control import Settings

PREFIX = "bs"  # the fleet's own names: bs-gw-000 ...
GROUP = 5  # gateways per interface group
SPAN = 10  # gateways one timed attach touches (two groups' worth, on their second port)
CONVERGE_LIMIT_S = 600.0
POLL_S = 0.5  # /v1/status/summary reads every gateway's record: polled gently while the manager works
START_WORKERS = 8  # ovsdb-tool, ovsdb-server --detach and vtep-ctl per gateway: mostly waiting on exec
WARM = 2
# before the idle window: the serve's CPU in slices of SETTLE_SLICE_S until one costs at least
# SETTLE_FLAT of the one before (no longer falling), at most SETTLE_MAX_S
SETTLE_SLICE_S, SETTLE_FLAT, SETTLE_MAX_S = 5.0, 0.8, 60.0
ATTACH_BUDGET_S = 120.0  # the attaches end here even if each waits its 30 s: the section stays bounded
console = Console()
TARGETS: dict[str, tuple[str, float]] = {
    "converge_1000_gateways_s": ("<=", 30), "serve_rss_1000_gateways_mib": ("<=", 1024),
    "idle_cpu_1000_gateways_pct": ("<", 2), "attach_ratio_at_1000": ("<=", 2),
}


# ------------------------------------------------------------------------ the fleet
def start_fleet(fleet: Fleet, advance: Any) -> None:
    """Start every server, several at a time; one whose port another process took meanwhile
    starts again on a new port (with 1,000 ports chosen up front, someone will)."""
    def one(db: VtepDb) -> None:
        for attempt in range(3):
            try:
                db.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                (db.dir / "ovsdb-server.log").unlink(missing_ok=True)  # its "listen failed" is about the old port
                db.tcp_port = free_port()
        lifecycle.record(db.pid(), f"ovsdb-server {db.name}")
        advance(1)

    pool = ThreadPoolExecutor(max_workers=START_WORKERS)
    try:
        list(pool.map(one, fleet.dbs))
    finally:  # a failure or a signal: the servers not started yet never start (the caller stops the rest)
        pool.shutdown(wait=True, cancel_futures=True)


def topology(gateways: list[dict], per: int) -> dict:
    """Groups of 5 on ``p1``; network k on groups k..k+per-1 (VLAN 100+k: one per group);
    ``span10``: the ``p2`` of the first 10 gateways, where the timed attaches go."""
    groups = [{"name": f"grp{i // GROUP}", "members": [{"gateway": g["name"], "port": "p1"}
                                                       for g in gateways[i:i + GROUP]]}
              for i in range(0, len(gateways), GROUP)]
    if per > len(groups):
        raise ValueError(f"{per} groups per network need {per} groups; {len(gateways)} gateways make {len(groups)}")
    networks = [{"name": f"s{k}", "tenant": "bench", "vni": 50000 + k,
                 "attachments": [{"interface_group": groups[(k + j) % len(groups)]["name"], "vlan": 100 + k}
                                 for j in range(per)]} for k in range(len(gateways))]
    span = {"name": "span10", "members": [{"gateway": g["name"], "port": "p2"} for g in gateways[:SPAN]]}
    return {"gateways": gateways, "interface_groups": [*groups, span], "networks": networks}


def write_store(topo: dict, server: Server) -> float:
    """``silonet apply`` on the server's SQLite before any serve runs on it. Returns seconds."""
    server.dir.mkdir(parents=True, exist_ok=True)
    path = server.dir.parent / "topology.json"
    path.write_text(json.dumps(topo))
    env = {**os.environ, "SILONET_DATA_DIR": str(server.dir),
           "SILONET_DATABASE_URL": server.database_url or f"sqlite:///{server.dir / 'silonet.db'}"}
    env.pop("SILONET_TOKEN", None)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "silonet.cli.main", "apply", "-f", str(path), "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"silonet apply of the scale topology failed ({run.returncode}): {run.stderr[-300:]}")
    return time.perf_counter() - t0


# ------------------------------------------------------------------------- converge
def realized(row: dict) -> bool:
    """A gateway's status row says it holds what it should, with no error."""
    return (row["realized_generation"] >= row["desired_generation"] and not row.get("last_error")
            and not row.get("binding_errors"))


def _trouble(rows: list[dict]) -> str | None:
    """The most common reason a gateway is not realized (numbers folded: ports differ)."""
    why: collections.Counter[str] = collections.Counter()
    example: dict[str, str] = {}
    for r in rows:
        if realized(r):
            continue
        text = r.get("last_error") or "; ".join(f"{k}: {v}" for k, v in (r.get("binding_errors") or {}).items())
        text = text or (f"{r['state']} (realized {r['realized_generation']} < desired {r['desired_generation']}"
                        f"{'' if r.get('owner') else '; no replica holds its lease'})")
        key = re.sub(r"\d+", "N", text)[:200]
        why[key] += 1
        example.setdefault(key, text[:200])
    if not why:
        return None
    key, n = why.most_common(1)[0]
    return f"{n} gateways: {example[key]}"


def wait_converged(http: httpx.Client, total: int, t0: float, bar: Progress) -> dict:
    """Poll /v1/status/summary until every gateway is realized without an error, then read
    /v1/status once to check each one (``realized``); or ``CONVERGE_LIMIT_S``. The summary is what
    a poller waiting for a fleet reads: the whole status of 1,000 gateways cost the manager ~25 ms
    of its interpreter each time, inside the figure."""
    task = bar.add_task(f"scale: converge, realized of {total}", total=total)
    rows: list[dict] = []
    polls, poll_s = 0, 0.0
    while time.perf_counter() - t0 < CONVERGE_LIMIT_S:
        p0 = time.perf_counter()
        done = 0
        try:
            r = http.get("/v1/status/summary")
            summary = r.json() if r.status_code == 200 else {}
            done = summary.get("states", {}).get("realized", 0)
            if summary.get("gateways") == total and done == total and summary.get("with_errors") == 0:
                r = http.get("/v1/status")
                rows = r.json() if r.status_code == 200 else rows
        except httpx.HTTPError:
            pass  # a busy manager may not answer within the client's timeout: ask again
        polls, poll_s = polls + 1, poll_s + time.perf_counter() - p0
        bar.update(task, completed=done)
        if len(rows) >= total and all(realized(x) for x in rows):
            return {"converge_1000_gateways_s": round(time.perf_counter() - t0, 2), "scale_realized": len(rows),
                    "scale_status_polls": polls, "scale_status_poll_ms": round(poll_s / polls * 1000, 1)}
        took = time.perf_counter() - p0  # the API shares the manager's CPU: polls keep to a third of it
        time.sleep(max(0.0, min(max(POLL_S - took, 2 * took), CONVERGE_LIMIT_S - (time.perf_counter() - t0))))
    with contextlib.suppress(httpx.HTTPError):  # which gateways, and why
        r = http.get("/v1/status")
        rows = r.json() if r.status_code == 200 else rows
    done = sum(realized(x) for x in rows)
    return {"converge_1000_gateways_s": None, "scale_realized": done,
            "scale_converge_failed": f"{done} of {total} gateways realized after {CONVERGE_LIMIT_S:.0f} s",
            "scale_top_error": _trouble(rows) or f"{total - len(rows)} gateways have no status record",
            "scale_status_polls": polls}


# ------------------------------------------------------------------- idle, attaches
def settle(pid: int, bar: Progress) -> float:
    """Until the converge's tail is over (its last records, announcements and snapshots written):
    the serve's CPU in SETTLE_SLICE_S slices stops falling (a slice costs at least SETTLE_FLAT of the
    one before), or SETTLE_MAX_S. Returns the seconds waited."""
    task = bar.add_task("scale: wait for the converge's tail to settle", total=None)
    t0 = time.perf_counter()
    last = None
    while time.perf_counter() - t0 < SETTLE_MAX_S:
        c0 = tree_cpu_s(pid)
        time.sleep(SETTLE_SLICE_S)
        used = tree_cpu_s(pid) - c0
        if last is not None and used >= SETTLE_FLAT * last:
            break
        last = used
    bar.update(task, total=1, completed=1)
    return time.perf_counter() - t0


def idle_cpu(pid: int, seconds: int, bar: Progress) -> float:
    task = bar.add_task(f"scale: serve CPU over {seconds} s idle", total=seconds)
    c0, t0 = tree_cpu_s(pid), time.perf_counter()
    for _ in range(seconds):
        time.sleep(1)
        bar.advance(task)
    return (tree_cpu_s(pid) - c0) / (time.perf_counter() - t0) * 100


def attaches(http: httpx.Client, n: int, bar: Progress, group: str = "span10", tag: str = "t", vni: int = 60000,
             vlan: int = 2000, label: str = "") -> tuple[list[float], list[str], int]:
    """``n`` timed attaches (after ``WARM``) of a new network ``<tag><i>`` (VNI ``vni + i``) to
    ``group`` on VLAN ``vlan + i``, each ?wait, within ``ATTACH_BUDGET_S``. Returns the latencies,
    the failures, and how many attaches (warm ones too) realized."""
    task = bar.add_task(label or f"scale: {n} attaches on {SPAN} gateways (?wait)", total=n + WARM)
    lat: list[float] = []
    failed: list[str] = []
    done = 0
    deadline = time.perf_counter() + ATTACH_BUDGET_S
    for i in range(n + WARM):
        if time.perf_counter() > deadline:
            failed.append(f"{n + WARM - i} attaches not tried: the {ATTACH_BUDGET_S:.0f} s budget ran out")
            break
        name = f"{tag}{i}"
        try:
            r = http.post("/v1/networks", json={"name": name, "tenant": "bench", "vni": vni + i})
            if r.status_code >= 400:
                failed.append(f"{name}: create {r.status_code} {r.text[:200]}")
                continue
            t0 = time.perf_counter()
            r = http.post(f"/v1/networks/{name}/attachments", params={"wait": 30},
                          json={"interface_group": group, "vlan": vlan + i})
            ms = (time.perf_counter() - t0) * 1000
        except httpx.HTTPError as err:
            failed.append(f"{name}: {err!r}")
            continue
        out = r.json() if r.status_code < 400 else {"status": r.status_code, "reason": r.text[:200]}
        if out.get("status") != "realized":
            failed.append(f"{name}: {out.get('status')} ({out.get('reason')})")
        else:
            done += 1
            if i >= WARM:
                lat.append(ms)
        bar.advance(task)
    return lat, failed, done


# ----------------------------------------------------------------------------- main
def scale(s: Settings) -> dict:
    """The section: see the module's docstring. Keys are fixed (``scale_gateways`` says the size)."""
    g, per = s.size("scale_gateways"), s.size("scale_groups_per_network")
    work = s.work / "scale"
    files = limits.raise_open_files()[1]  # a socket per chosen port while choosing 1,000, a pipe per child
    fleet = Fleet(work, g, ports=("p1", "p2"), prefix=PREFIX)
    server = Server(work / "server")
    server.workers = s.size("scale_workers")  # silonet serve --workers N
    out: dict[str, Any] = {"scale_gateways": g, "scale_workers": server.workers, "scale_networks": g,
                           "scale_attachments": g * per, "scale_open_files_limit": files}
    topology(fleet.gateways(), per)  # refused before anything starts
    store: postgres.Postgres | None = None
    try:
        if server.workers > 1 and s.size("scale_postgresql"):  # else SQLite's file, as with one process
            store = _postgres(work / "postgres")
            server.database_url = store.create_database("silonet") if store is not None else None
        out["scale_store"] = "postgresql" if store is not None else "sqlite"
        with progress(console) as bar:
            topo = _prepare(fleet, server, per, out, bar)
            _measure(s, server, fleet, topo, out, bar, store.pid() if store is not None else None)
    finally:
        server.stop()
        fleet.stop()
        if store is not None:
            store.stop()
        out.update(_log_summary(server.dir / "server.log"))  # after the stop: the log is whole
        _keep_log(server, s.out)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _postgres(where: Path) -> postgres.Postgres | None:
    """A PostgreSQL server of the section's own (``scale_postgresql``), None where none can run here."""
    if postgres.available() is not None:
        return None
    with lifecycle.shielded():  # a signal waits until its pid is written down
        store = postgres.Postgres(where).start()
        lifecycle.record(store.pid(), "postgres (the scale section's store)")
    return store


def _prepare(fleet: Fleet, server: Server, per: int, out: dict, bar: Progress) -> dict:
    """The fleet up and the store written; no serve runs yet. Returns the topology."""
    g = len(fleet.dbs)
    task = bar.add_task(f"scale: {g} vtep ovsdb-servers", total=g)
    t0 = time.perf_counter()
    start_fleet(fleet, lambda k: bar.advance(task, k))
    out["scale_fleet_start_s"] = round(time.perf_counter() - t0, 1)
    topo = topology(fleet.gateways(), per)  # a server restarted on a new port: its address now
    task = bar.add_task(f"scale: write the store ({g * per:,} attachments, no serve)", total=1)
    out["scale_store_write_s"] = round(write_store(topo, server), 1)
    bar.advance(task)
    return topo


def _skip(out: dict, why: str) -> None:
    out.update(idle_cpu_1000_gateways_pct=None, attach_p50_ms_at_1000=None, scale_skipped=f"idle CPU and "
               f"attaches: {why}")


def _measure(s: Settings, server: Server, fleet: Fleet, topo: dict, out: dict, bar: Progress,
             store: int | None = None) -> None:
    """Start the reconciling serve on the written store, then every figure in turn (``store``: the
    PostgreSQL server's pid, when it holds the store)."""
    g = len(topo["gateways"])
    devices = [p for db in fleet.dbs if (p := db.running_pid()) is not None]  # detached: no children
    devices_cpu, store_cpu = cpu_s(devices), tree_cpu_s(store) if store else 0.0
    t0 = time.perf_counter()  # the reconciling serve starts now
    try:
        server.start(timeout=CONVERGE_LIMIT_S, keep_db=True, fresh_port=True)
    except RuntimeError as err:  # /healthz never answered within its second: a manager too busy to serve
        out.update(converge_1000_gateways_s=None, serve_rss_1000_gateways_mib=None,
                   scale_converge_failed=f"{str(err).split(';')[0]} (/healthz, 1 s per try); its log: "
                                         f"{s.out / 'scale-serve.log'}")
        _skip(out, "silonet serve never answered")
        return
    out["scale_serve_up_s"] = round(time.perf_counter() - t0, 2)
    out["scale_serve_start_attempts"] = server.attempts  # more than one: a whole start lost to a taken port
    assert server.proc is not None
    pid = server.proc.pid
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        out.update(wait_converged(http, g, t0, bar))
        # what the converge cost: the manager's CPU (all its processes) and the devices' (ovsdb-servers
        # parsing and committing the writes), against the machine's cores: the floor under the figure
        out["scale_converge_serve_cpu_s"] = round(tree_cpu_s(pid), 1)
        out["scale_converge_devices_cpu_s"] = round(cpu_s(devices) - devices_cpu, 1)
        if store:  # PostgreSQL's (``scale_workers`` > 1): its backends are the postmaster's children
            out["scale_converge_store_cpu_s"] = round(tree_cpu_s(store) - store_cpu, 1)
        out["scale_cores"] = os.cpu_count()
        out["serve_rss_1000_gateways_mib"] = round(tree_rss_mib(pid), 1)
        out["serve_processes"] = len(tree(pid))
        if out["converge_1000_gateways_s"] is None:
            _skip(out, "the gateways did not converge")
            return
        idle = s.size("scale_idle_s")
        out["scale_idle_settle_s"] = round(settle(pid, bar), 1)
        out["idle_cpu_1000_gateways_pct"] = round(idle_cpu(pid, idle, bar), 2)
        out["scale_idle_window_s"] = idle
        lat, failed, attached = attaches(http, s.size("scale_attaches"), bar)
    out.update(_attach_figures(lat, failed))
    out.update(_check_device(fleet.dbs[0], topo, attached))


def _attach_figures(lat: list[float], failed: list[str]) -> dict:
    out: dict[str, Any] = {"attach_samples_at_1000": len(lat), "attach_failed_at_1000": len(failed)}
    if failed:
        out["attach_first_failure_at_1000"] = failed[0][:300]
    if len(failed) > 1:  # the budget's end, when it came, is the last
        out["attach_last_failure_at_1000"] = failed[-1][:300]
    out["attach_p50_ms_at_1000"] = round(pct(lat, 50), 2) if lat else None
    out["attach_p99_ms_at_1000"] = round(pct(lat, 99), 2) if lat else None
    return out


def _check_device(db: VtepDb, topo: dict, attached: int) -> dict:
    """The independent reader: vtep-ctl on the first gateway (in ``span10`` and ``grp0``)."""
    grp0 = sum(any(a["interface_group"] == "grp0" for a in n["attachments"]) for n in topo["networks"])
    try:
        seen = len(db.ctl("list-ls").split())
    except subprocess.CalledProcessError as err:
        return {"scale_first_gateway_check": f"vtep-ctl failed: {err.stderr.strip()[:200]}"}
    return {"scale_ls_on_first_gateway": seen, "scale_ls_expected_on_first_gateway": grp0 + attached}


def _keep_log(server: Server, out: Path) -> None:
    """The serve's log outlives the work directory: where the time went."""
    log = server.dir / "server.log"
    if log.exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, out / "scale-serve.log")


def _log_summary(log: Path) -> dict:
    """What the serve's log says: warnings and errors (the most common, numbers and ids folded)
    and the gateways it logged realized (what converged when the API could not say)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    why: collections.Counter[str] = collections.Counter()
    example: dict[str, str] = {}
    seen = set()
    for line in lines:
        if m := re.search(r" (?:WARNING|ERROR|CRITICAL) (.*)", line):
            key = re.sub(r"\d+", "N", re.sub(r"\[[^\]]*\]", "", m.group(1)))[:200]
            why[key] += 1
            example.setdefault(key, m.group(1)[:200])
        elif m := re.search(r": gateway ([^\s:]+)[\s:].*realized at generation", line):
            seen.add(m.group(1))
    out: dict[str, Any] = {"scale_log_warnings": sum(why.values()), "scale_log_realized_gateways": len(seen)}
    if why:
        key, n = why.most_common(1)[0]
        out["scale_log_top_warning"] = f"{n} x {example[key]}"
    return out


def derived(report: dict) -> dict:
    """Ratios across sections: attach latency at 1,000 gateways vs the attach section's."""
    at, base = report.get("attach_p50_ms_at_1000"), report.get("attach_p50_ms")
    if not at or not base:
        return {}
    out = {"attach_ratio_at_1000": round(at / base, 2)}
    span = (report.get("attach_by_span") or {}).get(f"{SPAN}_gateways", {}).get("p50_ms")
    if span:
        out["attach_ratio_at_1000_vs_10_gateway_span"] = round(at / span, 2)
    return out
