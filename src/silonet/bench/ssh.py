"""`silonet bench ssh`: N changes over one persistent, batched SSH session vs one new SSH
connection per change (networking-generic-switch's default), on a real sshd lab gateway.

Three ways, same gateway, same run: ``reconnect`` (connect, read, one change, disconnect:
the baseline; the read is what any driver needs to know what to change), ``persistent``
(one connection, one command per change) and ``batched`` (one connection, all changes in
one command = one device transaction: what silonet does).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from silonet.drivers.base import wait_connected
from silonet.drivers.ssh.driver import SshDriver
from silonet.lab import Lab, paper_topology
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.ops import Bind, Operation

console = Console()
VNI = 7700
BASE_VLAN = 1000


@dataclass
class Result:
    mode: str
    changes: int
    seconds: float

    @property
    def per_change_ms(self) -> float:
        return self.seconds / self.changes * 1000


async def _driver(gw: Gateway) -> SshDriver:
    d = SshDriver(gw, lambda: None)
    await d.start()
    await wait_connected(d, timeout=20.0)
    return d


async def _reset(gw: Gateway) -> None:
    """Empty the gateway of what the benchmark made, then create its logical switch."""
    d = await _driver(gw)
    actual = (await d.read()).owned
    await d.apply(diff(GatewayState({VNI: LogicalSwitch(VNI, "bench")}), actual))
    await d.read()
    await d.close()


def _changes(n: int, port: str, offset: int) -> list[Operation]:
    return [Bind(port, BASE_VLAN + offset + i, VNI) for i in range(n)]


async def run_modes(gw: Gateway, port: str, n: int, progress: Progress | None = None) -> list[Result]:
    results = []
    task = progress.add_task("ssh bench", total=3 * n) if progress else None

    def tick(k: int = 1) -> None:
        if progress and task is not None:
            progress.advance(task, k)

    await _reset(gw)
    t0 = time.perf_counter()
    for op in _changes(n, port, 0):
        d = await _driver(gw)
        await d.read()
        await d.apply([op])
        await d.close()
        tick()
    results.append(Result("reconnect", n, time.perf_counter() - t0))

    await _reset(gw)
    d = await _driver(gw)
    await d.read()
    t0 = time.perf_counter()
    for op in _changes(n, port, n):
        await d.apply([op])
        tick()
    results.append(Result("persistent", n, time.perf_counter() - t0))
    await d.close()

    await _reset(gw)
    d = await _driver(gw)
    await d.read()
    t0 = time.perf_counter()
    await d.apply(_changes(n, port, 2 * n))
    results.append(Result("batched", n, time.perf_counter() - t0))
    tick(n)
    after = await d.read()
    await d.close()
    bound = sum(1 for (p, v), vni in after.owned.bindings.items() if p == port and vni == VNI)
    if bound != n:
        raise RuntimeError(f"read-back: {bound} of {n} batched bindings present")
    await _reset(gw)
    return results


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([r.mode for r in results], [r.seconds for r in results], color=["#c44", "#c93", "#393"])
    for i, r in enumerate(results):
        ax.text(i, r.seconds, f"{r.seconds:.2f} s", ha="center", va="bottom")
    ax.set_ylabel(f"seconds for {results[0].changes} changes")
    ax.set_title("SSH: new connection per change vs persistent vs batched")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(changes: int = 100, out: Path = Path("bench-results"), lab_dir: Path = Path(".lab")) -> dict:
    if os.geteuid() != 0:
        raise SystemExit("the ssh benchmark runs sshd in lab namespaces: run it as root")
    lab = Lab(prefix="sb", index=9, base_dir=lab_dir)
    if lab.exists():
        lab.down()
    old_known = os.environ.get("SILONET_SSH_KNOWN_HOSTS")
    try:
        lab.up(paper_topology(), driver="ssh")  # inside: a signal or failure half way still takes it down
        status = lab.status()
        os.environ["SILONET_SSH_KNOWN_HOSTS"] = status["known_hosts"]
        spec = next(g for g in lab.inventory()["gateways"] if g["name"] == "gw-bm")
        mgmt = spec["management"]
        gw = Gateway(spec["name"], spec["vtep_ip"], Management("ssh", mgmt["address"], mgmt["dialect"],
                                                               mgmt["credentials"]),
                     ports=tuple(Port(p["name"]) for p in spec["ports"]))
        with Progress(console=console) as progress:
            results = asyncio.run(run_modes(gw, spec["ports"][0]["name"], changes, progress))
    finally:
        lab.down()
        if old_known is None:
            os.environ.pop("SILONET_SSH_KNOWN_HOSTS", None)
        else:
            os.environ["SILONET_SSH_KNOWN_HOSTS"] = old_known
    by = {r.mode: r for r in results}
    report = {
        "changes": changes,
        "seconds": {r.mode: round(r.seconds, 4) for r in results},
        "per_change_ms": {r.mode: round(r.per_change_ms, 3) for r in results},
        "ssh_ratio_persistent_vs_reconnect": round(by["reconnect"].seconds / by["batched"].seconds, 1),
        "ratio_unbatched_persistent_vs_reconnect": round(by["reconnect"].seconds / by["persistent"].seconds, 1),
        "target": ">= 20x (batched persistent session vs a new connection per change)",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "kernel": platform.release()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-ssh.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out / "bench-ssh.png")
    table = Table(title=f"{changes} changes on one lab gateway over real OpenSSH", title_justify="left")
    for col in ("mode", "total", "per change", "vs reconnect"):
        table.add_column(col)
    for r in results:
        table.add_row(r.mode, f"{r.seconds:.2f} s", f"{r.per_change_ms:.1f} ms",
                      f"{by['reconnect'].seconds / r.seconds:.1f}x")
    console.print(table)
    console.print(f"ssh_ratio_persistent_vs_reconnect = {report['ssh_ratio_persistent_vs_reconnect']}x "
                  f"(target >= 20x); written to {out / 'bench-ssh.json'} and {out / 'bench-ssh.png'}")
    return report
