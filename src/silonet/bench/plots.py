"""PNG figures of `silonet bench dataplane` (matplotlib, Agg): one call per file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from silonet.bench.iperf import Point, ratio

MODE_COLORS = {"ceiling": "#555555", "software": "#1f77b4", "gateway": "#d62728"}


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sizes_axis(ax, sizes: Sequence[int]) -> None:  # type: ignore[no-untyped-def]
    ax.set_xscale("log")
    ax.set_xticks(list(sizes))
    ax.set_xticklabels([str(s) for s in sizes], rotation=45, fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("write size (bytes)")
    ax.grid(True, alpha=0.3)


def _save(plt: object, fig: object, path: Path) -> None:
    """Every plot ends the same way: lay out, write the PNG, free the figure."""
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=110)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]


def throughput(points: Sequence[Point], mode: str, path: Path, note: str = "") -> None:
    """Throughput of one pair vs write size, one line per pair count."""
    plt = _plt()
    mine = [p for p in points if p.mode == mode]
    sizes = sorted({p.size for p in mine})
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n in sorted({p.pairs for p in mine}):
        line = sorted((p.size, p.throughput_bps_per_pair / 1e9) for p in mine if p.pairs == n)
        ax.plot([s for s, _ in line], [v for _, v in line], marker="o", ms=3, label=f"{n} pair{'s' * (n > 1)}")
    _sizes_axis(ax, sizes)
    ax.set_ylabel("Gbit/s per pair")
    ax.set_title(f"{mode}: throughput of one pair" + (f"\n{note}" if note else ""), fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    _save(plt, fig, path)


def pps(points: Sequence[Point], path: Path) -> None:
    """Packets (TCP: writes) per second of one pair vs size; per mode, fewest and most pairs."""
    plt = _plt()
    sizes = sorted({p.size for p in points})
    counts = sorted({p.pairs for p in points})
    shown = sorted({counts[0], counts[-1]})
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for mode in MODE_COLORS:
        for n, style in zip(shown, ("-", "--"), strict=False):
            line = sorted((p.size, p.pps_per_pair) for p in points if p.mode == mode and p.pairs == n)
            if line:
                ax.plot([s for s, _ in line], [v for _, v in line], style, marker="o", ms=3,
                        color=MODE_COLORS[mode], label=f"{mode}, {n} pair{'s' * (n > 1)}")
    _sizes_axis(ax, sizes)
    ax.set_yscale("log")
    ax.set_ylabel("packets/s per pair (TCP: writes/s)")
    ax.set_title("packet rate of one pair", fontsize=9)
    ax.legend(fontsize=7)
    _save(plt, fig, path)


def ratios(points: Sequence[Point], path: Path) -> None:
    """gateway/software and each mode/ceiling vs size; fewest and most pairs."""
    plt = _plt()
    sizes = sorted({p.size for p in points})
    modes = {p.mode for p in points}
    counts = sorted({p.pairs for p in points})
    shown = sorted({counts[0], counts[-1]})
    pairs_of = [("gateway", "software", "#9467bd")] + [(m, "ceiling", MODE_COLORS[m]) for m in ("software", "gateway")]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for num, den, color in pairs_of:
        if num not in modes or den not in modes:
            continue
        for n, style in zip(shown, ("-", "--"), strict=False):
            r = ratio(points, num, den, n)
            if r:
                ax.plot(list(r), list(r.values()), style, marker="o", ms=3, color=color,
                        label=f"{num}/{den}, {n} pair{'s' * (n > 1)}")
    ax.axhline(0.9, color="#999999", lw=0.8, ls=":")
    _sizes_axis(ax, sizes)
    ax.set_ylabel("throughput ratio")
    ax.set_title("ratios (dotted: 90 %)", fontsize=9)
    ax.legend(fontsize=7)
    _save(plt, fig, path)
