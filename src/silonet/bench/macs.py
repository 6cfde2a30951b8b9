"""`silonet bench control`'s ``macs`` section: a fabric whose devices learned many MACs.

Three gateways share ``macs_networks`` networks; the third learns ``macs`` MACs, spread over
them, as its own agent would (rows in its ``Ucast_Macs_Local``, here written in one transaction
through the OVS library). Figures:

- ``macs_distributed_s``: until both peers hold every one of them as a remote MAC, counted on
  each device by a reader of its own (a ``select`` over the device's own connection);
- ``macs_attach_ratio``: attach latency over the two peers (each then holding ``macs`` remote
  MACs) against the same attaches before the MACs were learned: a pass scoped to one VNI must
  not pay for the device's other MACs;
- ``macs_restart_realized_s``: a manager restarted on its store until the three gateways are
  realized again (each replica is read whole on connecting).

Each guards a fault found on such a fabric: remote MAC writes built in time quadratic in the
MACs (100,000 never arrived), transactions larger than a device answers within its probe, every
realization record rewriting a gateway's whole actual state, and a scoped pass scanning every
remote MAC. Loops are bounded; a figure that could not be measured is None with the reason.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import ovs.jsonrpc
import ovs.stream
from rich.console import Console
from rich.progress import Progress

from silonet.bench import scale
from silonet.bench.figures import pct, progress
from silonet.bench.fleet import Fleet, Server, ok, wait_realized
from silonet.devices.vtepdb import VtepDb
from silonet.drivers import ovsjson
from silonet.drivers.ovsdb.opening import transact

if TYPE_CHECKING:
    from silonet.bench.control import Settings

PREFIX = "bm"  # the section's own gateway names: bm-gw-000 ...
DB = "hardware_vtep"
DISTRIBUTE_LIMIT_S = 300.0  # 100,000 MACs took 36-40 s here
RESTART_LIMIT_S = 180.0
POLL_S = 0.5
RPC_TIMEOUT_MS = 120_000  # one transaction of 100,000 inserts took ~3 s here
console = Console()
TARGETS: dict[str, tuple[str, float]] = {"macs_attach_ratio": ("<=", 2)}


class Device:
    """One JSON-RPC connection to a device's ovsdb-server (the OVS library's, on its Unix socket:
    no inactivity probes to answer): what its own agent writes, and a reader of its own that
    counts rows. Each request waits at most ``RPC_TIMEOUT_MS``."""

    def __init__(self, db: VtepDb) -> None:
        ovsjson.enable()
        error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(db.unix), 10_000)
        if error:
            raise RuntimeError(f"cannot connect to {db.name} at {db.unix}: {os.strerror(error)}")
        self.name = db.name
        self.rpc = ovs.jsonrpc.Connection(stream)

    def transact(self, *ops: dict) -> list[dict]:
        request = ovs.jsonrpc.Message.create_request("transact", [DB, *ops])
        error, reply = transact(self.rpc, request, RPC_TIMEOUT_MS)
        if error or reply is None:
            raise RuntimeError(f"{self.name}: transact failed: {os.strerror(error)}")
        if reply.error:
            raise RuntimeError(f"{self.name}: {reply.error}")
        failed = [r for r in reply.result if r and "error" in r]
        if failed:
            raise RuntimeError(f"{self.name}: {failed[0]}")
        return reply.result

    def count(self, table: str) -> int:
        (result,) = self.transact({"op": "select", "table": table, "where": [], "columns": ["_uuid"]})
        return len(result["rows"])

    def close(self) -> None:
        self.rpc.close()


def learn(device: Device, db: VtepDb, count: int) -> None:
    """``count`` MACs learned on ``db``'s port, spread over its logical switches (one transaction)."""
    switches = device.transact({"op": "select", "table": "Logical_Switch", "where": [],
                                "columns": ["_uuid", "name"]})[0]["rows"]
    ls = [row["_uuid"] for row in sorted(switches, key=lambda row: row["name"])]
    if not ls:
        raise RuntimeError(f"{db.name} holds no logical switch to learn MACs on")
    ops: list[dict] = [{"op": "insert", "table": "Physical_Locator", "uuid-name": "me",
                        "row": {"dst_ip": db.tunnel_ip, "encapsulation_type": "vxlan_over_ipv4"}}]
    ops += [{"op": "insert", "table": "Ucast_Macs_Local",
             "row": {"MAC": f"02:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00:01",
                     "logical_switch": ls[i % len(ls)], "locator": ["named-uuid", "me"]}} for i in range(count)]
    device.transact(*ops)


def macs(s: Settings) -> dict:
    """The section: see the module's docstring."""
    m, nets, k = s.size("macs"), s.size("macs_networks"), s.size("macs_attaches")
    work = s.work / "macs"
    fleet = Fleet(work, 3, ports=("p1", "p2"), prefix=PREFIX)
    server = Server(work / "server")
    server.replica_id = "bench-macs"  # restarted under its name, it takes its leases back at once
    out: dict[str, Any] = {"macs_learned": m, "macs_networks": nets}
    devices: list[Device] = []
    try:
        with progress(console) as bar, httpx.Client(headers=server.headers, timeout=120) as http:
            task = bar.add_task("macs: 3 vtep ovsdb-servers and silonet serve", total=3)
            fleet.start(lambda n: bar.advance(task, n))
            server.start()
            http.base_url = httpx.URL(server.url)
            gws = fleet.gateways()
            groups = [{"name": "all", "members": [{"gateway": g["name"], "port": "p1"} for g in gws]},
                      {"name": "pair", "members": [{"gateway": g["name"], "port": "p2"} for g in gws[:2]]}]
            networks = [{"name": f"m{v}", "tenant": "bench", "vni": 20000 + v,
                         "attachments": [{"interface_group": "all", "vlan": 100 + v}]} for v in range(nets)]
            ok(http.post("/v1/apply", params={"wait": 60},
                         json={"gateways": gws, "interface_groups": groups, "networks": networks}))
            wait_realized(http)
            before, failed = _attaches(http, k, bar, "before", 40000, 1000)
            for db in fleet.dbs:
                devices.append(Device(db))
            out.update(_distribute(devices, fleet.dbs[2], m, bar))
            if out["macs_distributed_s"] is not None:
                wait_realized(http)
                after, failed_after = _attaches(http, k, bar, "after", 41000, 2000)
                out.update(_attach_figures(before, after, failed + failed_after))
                out.update(_restart(server, bar))
    finally:
        for device in devices:
            device.close()
        server.stop()
        fleet.stop()
    return out


def _attaches(http: httpx.Client, n: int, bar: Progress, tag: str, vni: int, vlan: int) -> tuple[list, list]:
    lat, failed, _done = scale.attaches(http, n, bar, group="pair", tag=tag, vni=vni, vlan=vlan,
                                        label=f"macs: {n} attaches on 2 gateways, {tag} the MACs (?wait)")
    return lat, failed


def _distribute(devices: list[Device], db: VtepDb, m: int, bar: Progress) -> dict:
    """Learn ``m`` MACs on the third device; until both peers hold them all (``DISTRIBUTE_LIMIT_S``)."""
    task = bar.add_task(f"macs: {m:,} MACs learned on {db.name}, until both peers hold them", total=2 * m)
    t0 = time.perf_counter()
    learn(devices[2], db, m)
    held = [0, 0]
    while time.perf_counter() - t0 < DISTRIBUTE_LIMIT_S:
        held = [device.count("Ucast_Macs_Remote") for device in devices[:2]]
        bar.update(task, completed=sum(min(h, m) for h in held))
        if min(held) >= m:
            return {"macs_distributed_s": round(time.perf_counter() - t0, 2), "macs_remote_on_peers": held}
        time.sleep(POLL_S)
    return {"macs_distributed_s": None, "macs_remote_on_peers": held,
            "macs_failed": f"after {DISTRIBUTE_LIMIT_S:.0f} s the peers held {held[0]:,} and {held[1]:,} of {m:,}"}


def _attach_figures(before: list[float], after: list[float], failed: list[str]) -> dict:
    out: dict[str, Any] = {"macs_attach_samples": len(after), "macs_attach_failed": len(failed),
                           "_macs_latencies": {"before": before, "after": after}}  # the plot's, not control.json's
    if failed:
        out["macs_attach_first_failure"] = failed[0]
    if before and after:
        b, a = pct(before, 50), pct(after, 50)
        out.update(macs_attach_p50_ms_before=round(b, 2), macs_attach_p50_ms_after=round(a, 2),
                   macs_attach_p99_ms_after=round(pct(after, 99), 2), macs_attach_ratio=round(a / b, 2))
    return out


def _restart(server: Server, bar: Progress) -> dict:
    """Stop the manager, start it on its store: until the new process realized the three gateways
    (a pass of its own recorded: contact after the restart; the store's rows say realized at once)."""
    task = bar.add_task("macs: restart the manager, until the 3 gateways are realized", total=3)
    server.stop()
    since = datetime.now(UTC)
    t0 = time.perf_counter()
    server.start(keep_db=True)
    done = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        while time.perf_counter() - t0 < RESTART_LIMIT_S:
            try:
                rows = ok(http.get("/v1/status"))
            except (httpx.HTTPError, RuntimeError):  # a manager busy reading its replicas: ask again
                time.sleep(POLL_S)
                continue
            done = sum(scale.realized(row) and row["state"] == "realized" and row["last_contact"] is not None
                       and datetime.fromisoformat(row["last_contact"]) > since for row in rows)
            bar.update(task, completed=done)
            if len(rows) == 3 and done == 3:
                return {"macs_restart_realized_s": round(time.perf_counter() - t0, 2)}
            time.sleep(POLL_S)
    return {"macs_restart_realized_s": None,
            "macs_restart_failed": f"{done} of 3 gateways realized {RESTART_LIMIT_S:.0f} s after the restart"}
