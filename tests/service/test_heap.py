"""``heap.Trimmer`` (silonet/heap.py) in a process of its own: memory Python freed in the middle of
glibc's heap stays resident until a trim, and the trimmer gives it back once more than its bound
is free, and leaves a heap with little free alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from silonet import heap

SCRIPT = textwrap.dedent("""
    import json, sys
    from silonet import heap

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    t = heap.Trimmer(free_bytes=16 * 1024 * 1024)
    calm = t.trim_now()  # a fresh interpreter: little free, nothing done
    keep, drop = [], []
    for i in range(4000):  # 100 KiB blocks (below the mapping threshold), every other one kept
        (keep if i % 2 else drop).append(bytearray(100 * 1024))
    del drop
    before, free = rss_mib(), heap.free_in_arenas()
    trimmed = t.trim_now()
    again = t.trim_now()  # the trimmed chunks stay free (their pages went back): not another trim
    print(json.dumps({"calm": calm, "free_mib": free / 2**20, "trimmed_mib": trimmed / 2**20,
                      "before": before, "after": rss_mib(), "kept": len(keep), "again": again}))
""")


@pytest.mark.skipif(heap.free_in_arenas() is None, reason="not on glibc: the trimmer does nothing there")
def test_the_trimmer_returns_what_python_freed_inside_the_heap() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(run.stdout)
    assert got["calm"] == 0  # under the bound: no trim
    assert got["free_mib"] > 150  # 2,000 blocks of 100 KiB freed between kept ones
    assert got["trimmed_mib"] == pytest.approx(got["free_mib"], rel=0.05)
    assert got["again"] == 0  # nothing freed since: the next look leaves the heap alone
    assert got["before"] - got["after"] > 150, got  # and the pages went back to the system


def test_young_objects_freeze_and_a_closed_cycle_is_freed_once_calm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``freeze_young`` moves what was made since the last collection where no collection walks
    it, cycles too; ``reclaim`` frees a frozen cycle once a replica was closed and the freezing is
    calm, or once ``RECLAIM_EVERY_S`` passed, and otherwise does nothing."""
    import gc
    import time
    import weakref

    class Node:
        peer: Node

    monkeypatch.setattr(heap, "_frozen", heap._Frozen())
    try:
        gc.collect()
        a, b = Node(), Node()
        a.peer, b.peer = b, a  # a cycle: only the collector frees it
        ref = weakref.ref(a)
        young = [Node() for _ in range(50)]
        assert heap.freeze_young(at=10**9) == 0  # too few: nothing frozen
        assert heap.freeze_young(at=10) >= 52
        assert not any(o is young[0] for o in gc.get_objects())  # in no generation: frozen
        del a, b
        gc.collect()
        assert ref() is not None  # no collection walks it
        now = time.monotonic()
        assert not heap.reclaim(now)  # no replica closed, the last full collection just now
        heap.closed()
        assert not heap.reclaim(now)  # closed, but it froze a moment ago
        assert heap.reclaim(now + heap.RECLAIM_CALM_S)
        assert ref() is None  # freed
        assert not heap.reclaim(now + heap.RECLAIM_EVERY_S * 2)  # nothing frozen since
        more = [Node() for _ in range(20)]
        assert heap.freeze_young(at=10) and more
        assert not heap.reclaim(now + heap.RECLAIM_CALM_S + 1)  # frozen, nothing closed, within the hour
        assert heap.reclaim(now + heap.RECLAIM_CALM_S + heap.RECLAIM_EVERY_S + 1)
    finally:
        gc.unfreeze()
