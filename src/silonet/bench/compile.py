"""Control-plane scale: the compiler on a synthetic fleet (issue 7 item 4).

Two questions. Can one manager compile a whole data center (every gateway's desired
state) in seconds and in bounded memory? And does the cost of one change follow the change
rather than the fleet: attaching one VLAN among 1,000 gateways should cost about what it
costs among 10, since both touch the same 10 gateways.

The full compile runs in a child process, so its peak RSS is the compile's own (inventory
plus every compiled state) and not whatever the caller already holds. The incremental
figure is a median over repetitions; each attaches one new VLAN of an existing group to a
new network, compiles and diffs every affected gateway, then detaches to restore.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from silonet import heap
from silonet.bench.synthetic import build_inventory, group_name
from silonet.model import Attachment, Inventory, VirtualNetwork
from silonet.plan import compile_gateway, compile_intent, diff

FLEET, QUICK_FLEET, SMALL_FLEET = 1000, 100, 10
BENCH_NETWORK = "bench-incremental"


@dataclass(frozen=True, slots=True)
class FullCompile:
    """One fresh process: build the fleet, compile it ``runs`` times."""

    gateways: int
    groups: int
    networks: int
    attachments: int
    bindings: int
    logical_switches: int
    build_s: float
    compile_full_s: float  # median over runs
    inventory_rss_mib: float  # peak before the first compile
    compile_peak_rss_mib: float  # peak of the whole child: inventory + compiled states


@dataclass(frozen=True, slots=True)
class Incremental:
    gateways: int
    affected_gateways: int
    operations: int  # per repetition, over every affected gateway
    median_ms: float


@dataclass(frozen=True)
class CompileResult:
    """Every figure, flat and JSON-ready (``vars()`` or ``to_dict()``)."""

    quick: bool
    gateways: int  # of the full fleet; the incremental "1000" figures use it too (``quick``: 100)
    groups: int
    networks: int
    attachments: int
    bindings: int  # over every gateway's desired state
    logical_switches: int
    build_s: float
    compile_full_s: float
    inventory_rss_mib: float
    compile_peak_rss_mib: float
    repetitions: int
    incremental_1000_ms: float
    incremental_10_ms: float
    incremental_ratio_1000_vs_10: float
    affected_1000: int  # gateways compiled and diffed per change: 10 in both, by design
    affected_10: int
    operations_1000: int  # per change, over the affected gateways
    operations_10: int

    def to_dict(self) -> dict:
        return asdict(self)


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def full_compile_here(gateways: int, attachments: int | None = None, runs: int = 1) -> FullCompile:
    """Build and compile in this process (the child side of ``full_compile``)."""
    t0 = time.perf_counter()
    inv = build_inventory(gateways, attachments=attachments)
    build_s = time.perf_counter() - t0
    inventory_rss = _rss_mib()
    times, counts = [], (0, 0)
    for _ in range(runs):
        t0 = time.perf_counter()
        with heap.paused():  # as a fleet compile should run (see compile_intent)
            states = compile_intent(inv)
        times.append(time.perf_counter() - t0)
        counts = (sum(len(s.bindings) for s in states.values()), sum(len(s.logical_switches) for s in states.values()))
        del states  # the next run must not hold two fleets at once
    return FullCompile(
        gateways=len(inv.gateways), groups=len(inv.groups), networks=len(inv.networks),
        attachments=len(inv.attachments), bindings=counts[0], logical_switches=counts[1], build_s=build_s,
        compile_full_s=statistics.median(times), inventory_rss_mib=inventory_rss, compile_peak_rss_mib=_rss_mib(),
    )


def full_compile(gateways: int, attachments: int | None = None, runs: int = 1, timeout: float = 900) -> FullCompile:
    """``full_compile_here`` in a fresh Python process, so RSS is the compile's alone."""
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    code = (
        "import json, dataclasses; from silonet.bench.compile import full_compile_here; "
        f"print(json.dumps(dataclasses.asdict(full_compile_here({gateways}, {attachments!r}, {runs}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the compile child failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return FullCompile(**json.loads(out.stdout.strip().splitlines()[-1]))


def _free_vlan(inv: Inventory, group: str) -> int:
    used = inv.vlans_of(group)
    return next(v for v in range(4094, 0, -1) if v not in used)


def incremental(inv: Inventory, repetitions: int = 20) -> Incremental:
    """Median cost of one attach + compile + diff of every affected gateway."""
    group = group_name(len(inv.groups) // 2)
    vlan = _free_vlan(inv, group)
    inv.put_network(VirtualNetwork(BENCH_NETWORK, "bench", inv.allocate_vni(range(1, 16_777_216))))
    try:
        # The previous desired state of every gateway the change can touch: the new
        # network is on this group only, so those are the group's gateways.
        before = {gw: compile_gateway(inv, gw) for gw in inv.groups[group].gateways}
        times, affected, ops = [], 0, 0
        for _ in range(repetitions):
            t0 = time.perf_counter()
            inv.attach(Attachment(group, vlan, BENCH_NETWORK))
            gws = inv.gateways_of_network(BENCH_NETWORK) | inv.groups[group].gateways
            plans = [diff(compile_gateway(inv, gw), before[gw]) for gw in sorted(gws)]
            times.append(time.perf_counter() - t0)
            inv.detach(BENCH_NETWORK, group, vlan)
            affected, ops = len(gws), sum(len(p) for p in plans)
    finally:
        inv.remove_network(BENCH_NETWORK, cascade=True)
    return Incremental(len(inv.gateways), affected, ops, statistics.median(times) * 1000)


def measure(quick: bool = False, repetitions: int = 20, full_runs: int = 1) -> CompileResult:
    """The compile figures of ``silonet bench control``; ``quick`` scales the fleet down to
    100 gateways (20,000 attachments) for CI."""
    fleet = QUICK_FLEET if quick else FLEET
    full = full_compile(fleet, runs=full_runs)
    big = incremental(build_inventory(fleet), repetitions)
    small = incremental(build_inventory(SMALL_FLEET), repetitions)
    return CompileResult(
        quick=quick, gateways=full.gateways, groups=full.groups, networks=full.networks,
        attachments=full.attachments, bindings=full.bindings, logical_switches=full.logical_switches,
        build_s=round(full.build_s, 3), compile_full_s=round(full.compile_full_s, 3),
        inventory_rss_mib=round(full.inventory_rss_mib, 1), compile_peak_rss_mib=round(full.compile_peak_rss_mib, 1),
        repetitions=repetitions, incremental_1000_ms=round(big.median_ms, 3),
        incremental_10_ms=round(small.median_ms, 3),
        incremental_ratio_1000_vs_10=round(big.median_ms / small.median_ms, 3),
        affected_1000=big.affected_gateways, affected_10=small.affected_gateways,
        operations_1000=big.operations, operations_10=small.operations,
    )


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv).to_dict(), indent=2))
