"""``silonet serve`` raises its own open-files limit (a gateway holds up to three descriptors)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource
from silonet import limits
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
before, after = limits.raise_open_files()
now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
want = 1048576 if hard == resource.RLIM_INFINITY else hard
print(before, after, now, want)
"""


def test_serve_raises_its_soft_limit_to_the_hard_one() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    before, after, now, want = map(int, out)
    assert before == 256
    assert after == now == want  # as far as the hard limit allows


def test_the_limit_is_left_when_already_at_the_hard_one() -> None:
    child = CHILD.replace("(256, hard)", "(hard, hard)").replace("print(before, after, now, want)",
                                                                 "print(before == after == now == want)")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_the_manager_switches_threads_sooner_than_python_does(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from silonet import limits

    before = sys.getswitchinterval()
    monkeypatch.setattr(limits, "_intervals", None)  # restored after: other tests see no intervals
    try:
        monkeypatch.delenv("SILONET_SWITCH_INTERVAL_MS", raising=False)
        assert limits.quicker_switches() == limits.SWITCH_INTERVAL_S < before
        assert sys.getswitchinterval() == limits.SWITCH_INTERVAL_S
        monkeypatch.setenv("SILONET_SWITCH_INTERVAL_MS", "0.5")
        assert limits.quicker_switches() == 0.0005 == sys.getswitchinterval()
    finally:
        sys.setswitchinterval(before)
