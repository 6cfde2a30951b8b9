"""What the control benchmark's sections share to make their figures: the nearest-rank percentile,
the progress bar, and a serve's process tree (its resident memory and CPU: ``serve --workers N``
runs reconcile processes of its own, and "the manager's" figures count them all)."""

from __future__ import annotations

import collections
import contextlib
import os
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid (from ``/proc``)."""
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        kids[ppid].append(int(entry.name))
    return kids


def tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    kids, out, todo = children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def tree_rss_mib(root: int) -> float:
    """Resident memory of the tree (each process's RSS from ``/proc/<pid>/statm``)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
    return total / 2**20


def tree_cpu_s(root: int) -> float:
    """User + system CPU the tree's live processes used so far (reaped children included)."""
    return cpu_s(tree(root))


def cpu_s(pids: list[int]) -> float:
    """User + system CPU these processes used so far (their reaped children included): no look
    for children (``tree`` reads all of /proc each time: 1,000 servers would read it 1,000 times)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    return total / tick
