"""What `silonet bench dataplane` reports: the paper's figures it compares with, the machine it ran
on, results.csv/results.json, the PNG plots and the summary tables."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from silonet.bench import iperf, plots
from silonet.bench.iperf import Point
from silonet.lab.netns import run, which

if TYPE_CHECKING:
    from silonet.bench.dataplane import Settings

console = Console()
MODES = ("ceiling", "software", "gateway")
PAPER_SIZES = (88, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000)
PAPER_PAIRS = tuple(range(1, 11))
PAPER_DURATION = 60
DEFAULT_DURATION = 3  # the full 13 x 10 x 3 matrix: ~21 min at 3 s on 2 cores, ~34 min at 5 s (see estimate())
# What the paper reports: the size from which a mode saturates the link.
PAPER_SATURATION = {"ceiling": "-", "software": ">= 4000 B with 2+ pairs, >= 6000 B with 1 pair",
                    "gateway": "~1500 B"}
MTU, UNDERLAY_MTU = 9000, 9100
EMULATOR_NOTE = ("gateways here are ovs-vtep, a userspace emulator (OVS netdev datapath, no offloads), "
                 "so gateway mode is expected to be slower than kernel VXLAN on this machine; "
                 "a hardware gateway forwards in its ASIC")


# ---------------------------------------------------------------------------------------- facts
def machine_facts() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str | None:
        if which(argv[0]) is None:
            return None
        proc = run(argv, check=False, timeout=10)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else None

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "platform": platform.platform(),
            "ovs": first_line(["ovs-vsctl", "--version"]), "iperf3": first_line(["iperf3", "--version"]),
            "python": platform.python_version()}


def estimate(sizes: int, pairs: int, modes: int, duration: float, overhead: float, repeat: int = 1) -> float:
    """Seconds for a matrix: every run costs its duration plus a per-run overhead (servers, process start)."""
    return sizes * pairs * modes * repeat * (duration + overhead)


def report(settings: Settings, points: list[Point], raw: list[dict[str, Any]], setup_s: float, runs_s: float,
            overhead: float, notes: list[str], emulated: bool) -> dict[str, Any]:
    sat = {m: {n: iperf.saturation(points, m, n) for n in settings.pairs} for m in settings.modes if m != "ceiling"}
    paper = estimate(len(PAPER_SIZES), len(PAPER_PAIRS), len(MODES), settings.duration, overhead)
    default = estimate(len(PAPER_SIZES), len(PAPER_PAIRS), len(MODES), DEFAULT_DURATION, overhead)
    return {
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
                     "protocol": "UDP" if settings.udp else "TCP", "mtu": MTU, "underlay_mtu": UNDERLAY_MTU},
        "machine": machine_facts(),
        "gateways": ("emulated: " + EMULATOR_NOTE) if emulated else "from the inventory",
        "points": [asdict(p) for p in points],
        "saturation_90pct_of_ceiling": {m: {str(n): v for n, v in d.items()} for m, d in sat.items()},
        "paper_saturation": PAPER_SATURATION,
        "timing": {"setup_s": round(setup_s, 1), "runs_s": round(runs_s, 1), "overhead_per_run_s": round(overhead, 2),
                   "paper_matrix_estimate_s": round(paper),
                   "paper_matrix_at_default_duration_estimate_s": round(default),
                   "default_duration_s": DEFAULT_DURATION,
                   "paper_matrix": f"{len(PAPER_SIZES)} sizes x {len(PAPER_PAIRS)} pair counts x {len(MODES)} modes "
                                   f"at {settings.duration} s"},
        "notes": notes,
        "samples": raw,
    }


def write(out: Path, settings: Settings, points: list[Point], report: dict[str, Any]) -> None:
    with (out / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "size", "pairs", "throughput_bps_per_pair", "pps_per_pair", "ratio_to_ceiling",
                    "repeats", "protocol", "duration_s"])
        ceiling = {(p.size, p.pairs): p.throughput_bps_per_pair for p in points if p.mode == "ceiling"}
        for p in points:
            top = ceiling.get((p.size, p.pairs))
            w.writerow([p.mode, p.size, p.pairs, f"{p.throughput_bps_per_pair:.0f}", f"{p.pps_per_pair:.1f}",
                        f"{p.throughput_bps_per_pair / top:.4f}" if top else "", p.repeats,
                        "UDP" if settings.udp else "TCP", settings.duration])
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    note = EMULATOR_NOTE.split(";")[0] if report["gateways"].startswith("emulated") else ""
    for mode in settings.modes:
        plots.throughput(points, mode, out / f"throughput-{mode}.png", note if mode == "gateway" else "")
    plots.pps(points, out / "pps.png")
    plots.ratios(points, out / "ratio.png")


def summary(settings: Settings, points: list[Point], report: dict[str, Any]) -> None:
    table = Table(title="first size at >= 90 % of the ceiling (this machine) vs the paper", title_justify="left")
    table.add_column("mode")
    for n in settings.pairs:
        table.add_column(f"{n} pair{'s' * (n > 1)}", justify="right")
    table.add_column("paper")
    for mode, by_n in report["saturation_90pct_of_ceiling"].items():
        table.add_row(mode, *[f"{v} B" if v else "never" for v in by_n.values()], PAPER_SATURATION[mode])
    console.print(table)
    t2 = Table(title="throughput (Gbit/s) and pps of one pair", title_justify="left")
    for col in ("mode", "pairs", "size", "Gbit/s", "pps", "/ceiling"):
        t2.add_column(col, justify="right")
    ceiling = {(p.size, p.pairs): p.throughput_bps_per_pair for p in points if p.mode == "ceiling"}
    for p in sorted(points, key=lambda p: (p.pairs, p.size, MODES.index(p.mode))):
        top = ceiling.get((p.size, p.pairs))
        t2.add_row(p.mode, str(p.pairs), str(p.size), f"{p.throughput_bps_per_pair / 1e9:.3f}",
                   f"{p.pps_per_pair:,.0f}", f"{p.throughput_bps_per_pair / top:.2f}" if top else "-")
    console.print(t2)
    if report["gateways"].startswith("emulated"):
        console.print(f"[yellow]note:[/] {EMULATOR_NOTE}.")
    t = report["timing"]
    console.print(f"setup {t['setup_s']} s, runs {t['runs_s']} s ({t['overhead_per_run_s']} s overhead per run); "
                  f"the paper-shaped matrix ({t['paper_matrix']}) would take ~{t['paper_matrix_estimate_s'] / 60:.0f} "
                  f"min here (~{t['paper_matrix_at_default_duration_estimate_s'] / 60:.0f} min at the default "
                  f"{DEFAULT_DURATION} s). Results in {settings.out}.")

