"""`silonet bench control` as people stop it: a SIGINT during the vtep-ctl baseline, a SIGTERM
while its thread pool starts ovsdb-servers and another while the manager idles over a converged
fleet. Each time, within 10 s the bench has exited, no process any of its pid files (or its
registry) named is alive, nothing mentions its work directory, and the directory is gone. And a
second bench on a work directory a live one holds refuses with one line naming the holder.

Where the bench is comes from its own ``phase`` lines (and its registry, for a signal while
servers start); the bench names the phase it was stopped in, so a signal that missed its phase
fails the test instead of passing it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from silonet.bench.lifecycle import REGISTRY, alive, start_time, sweep
from silonet.devices.vtepdb import available

pytestmark = [pytest.mark.ovs, pytest.mark.slow]
STOP_S = 10.0  # the bound: the bench and everything it started gone
PHASE_S = 240.0  # how long a phase may take to come on a shared, loaded machine


@pytest.fixture(autouse=True)
def _needs_ovsdb() -> None:
    if missing := available():
        pytest.skip(f"Open vSwitch is not installed here (missing: {missing}); ./run test installs it")


class Bench:
    """``silonet bench control ...`` as a child process: its output lines, its work directory,
    and every pid (with its start time) that its pid files and registry named while it ran."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.pids: dict[int, int] = {}  # pid -> start time
        self.work: Path | None = None
        self.proc = subprocess.Popen([sys.executable, "-m", "silonet.cli.main", "bench", "control", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env={**os.environ, "COLUMNS": "200"})
        threading.Thread(target=self._read, daemon=True).start()
        self._watching = True
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                if self.work is None and (m := re.match(r"work directory (\S+)$", line.strip())):
                    self.work = Path(m.group(1))
                self.cond.notify_all()

    def _watch(self) -> None:
        while self._watching:
            self.snapshot()
            time.sleep(0.05)

    def snapshot(self) -> None:
        """Note every pid the work directory's pid files and registry name now."""
        work = self.work
        if work is None:
            return
        with contextlib.suppress(OSError):
            found = [int(f.read_text().split()[0]) for f in work.rglob("*.pid") if f.read_text().strip()]
            found += [int(line.split()[0]) for line in (work / REGISTRY).read_text().splitlines()
                      if line.strip()] if (work / REGISTRY).exists() else []
            for pid in found:
                if pid not in self.pids and (t := start_time(pid)) is not None:
                    self.pids[pid] = t

    def wait_for(self, pattern: str, timeout: float = PHASE_S) -> str:
        rx = re.compile(pattern)
        with self.cond:
            ok = self.cond.wait_for(lambda: any(rx.search(x) for x in self.lines) or self.proc.poll() is not None,
                                    timeout)
            hit = next((x for x in self.lines if rx.search(x)), None)
        assert ok and hit is not None, f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines[-40:])
        return hit

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = PHASE_S) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.proc.poll() is None, f"the bench ended before {what}:\n" + "\n".join(self.lines[-40:])
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
            time.sleep(0.02)

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def close(self) -> None:
        """Whatever happened: the bench and anything left of it are stopped (by pid)."""
        self._watching = False
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.work is not None and self.work.exists():
            sweep(self.work)
            shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def bench() -> Iterator[list[Bench]]:
    started: list[Bench] = []
    yield started
    for b in started:
        b.close()


def _mentioning(path: Path) -> list[int]:
    """Live processes whose command line or environment names ``path``."""
    needle, out = str(path).encode(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and alive(int(entry.name)):
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                    out.append(int(entry.name))
    return out


def _stop_and_check(b: Bench, sig: signal.Signals, phase: str, started: int) -> None:
    """``started``: how many processes the bench holds by then at least (else the checks prove nothing)."""
    b.snapshot()
    assert len(b.pids) >= started, f"the bench had started fewer than {started}: {b.pids}"
    os.kill(b.proc.pid, sig)
    b.proc.wait(timeout=STOP_S)  # the bench exited (TimeoutExpired fails the test)
    assert b.proc.returncode == 128 + sig, b.output()
    out = b.output()
    assert f"stopped by {sig.name} during phase {phase}" in out, out
    left = {pid: t for pid, t in b.pids.items() if alive(pid, t)}
    assert not left, f"still running after the bench exited: {left}"
    assert b.work is not None and not b.work.exists(), f"{b.work} was left behind"
    assert not _mentioning(b.work)


def test_sigint_during_the_vtepctl_baseline_removes_everything(tmp_path: Path, bench: list[Bench]) -> None:
    b = Bench("--quick", "--only", "bulk", "--size", "bulk=2000", "--out", str(tmp_path / "out"))
    bench.append(b)
    b.wait_for(r"^phase bulk\.baseline: one vtep-ctl per binding \(4000 calls\)")
    _stop_and_check(b, signal.SIGINT, "bulk.baseline", started=2)  # vtep-ctl's 2 ovsdb-servers (silonet: done)
    assert not (tmp_path / "out" / "control.json").exists()  # a stopped run reports nothing


@pytest.mark.parametrize(("sizes", "phase", "started"), [
    (("converge_gateways=60",), "converge.servers", 1),  # the thread pool is starting ovsdb-servers
    (("idle_s=600",), "converge.idle", 11),  # every gateway converged: 10 ovsdb-servers and serve up
])
def test_sigterm_during_converge_removes_everything(tmp_path: Path, bench: list[Bench], sizes: tuple[str, ...],
                                                    phase: str, started: int) -> None:
    b = Bench("--quick", "--only", "converge", *(x for s in sizes for x in ("--size", s)),
              "--out", str(tmp_path / "out"))
    bench.append(b)
    b.wait_for(rf"^phase {re.escape(phase)}:")
    if phase == "converge.servers":  # some servers started, most not yet
        b.wait_until(lambda: b.work is not None and (b.work / REGISTRY).exists(), "first ovsdb-server recorded")
    _stop_and_check(b, signal.SIGTERM, phase, started)


def test_a_second_bench_refuses_the_work_directory_a_live_one_holds(tmp_path: Path, bench: list[Bench]) -> None:
    work = Path(tempfile.mkdtemp(prefix="sbs-"))  # short: unix socket paths live under it
    try:
        first = Bench("--quick", "--only", "converge", "--size", "idle_s=600", "--work", str(work),
                      "--out", str(tmp_path / "out1"))
        bench.append(first)
        first.wait_for(r"^phase converge\.idle:")
        second = Bench("--quick", "--only", "compile", "--work", str(work), "--out", str(tmp_path / "out2"))
        bench.append(second)
        second.proc.wait(timeout=120)
        assert second.proc.returncode == 1
        errors = [x for x in second.output().splitlines() if "error:" in x]
        assert len(errors) == 1 and str(work) in errors[0] and f"pid {first.proc.pid}" in errors[0], second.output()
        assert "phase" not in second.output()  # it ran nothing
        assert first.proc.poll() is None and (work / "converge").is_dir()  # the holder was not disturbed
        _stop_and_check(first, signal.SIGINT, "converge.idle", started=11)
    finally:
        shutil.rmtree(work, ignore_errors=True)
