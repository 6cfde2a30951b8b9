"""`bench/lifecycle.py` on its own (no OVS): a signal inside a run unwinds and removes what the
run started, a signal while a process starts waits for its pid to be recorded, a work directory
is held by one bench at a time, and a dead holder's leftovers are stopped (by pid, never by name)
before it is taken over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from silonet.bench import lifecycle
from silonet.bench.lifecycle import LOCK, REGISTRY, Run, Stopped, WorkDirBusy, alive, record, shielded, start_time

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts: killed and reaped whatever the test did."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _wait_dead(proc: subprocess.Popen) -> None:
    proc.wait(timeout=10)  # our child: reaped here, so the pid cannot be reused under the assert


def test_sigterm_in_a_run_stops_what_it_recorded_and_removes_its_directory(children: list) -> None:
    before = signal.getsignal(signal.SIGTERM)
    work: Path | None = None
    with pytest.raises(Stopped) as stop, Run(prefix="silonet-test-life-") as run:
        work = run.dir
        assert work is not None and (work / LOCK).exists()
        with shielded():
            children.append(subprocess.Popen(SLEEP, start_new_session=True))
            record(children[-1].pid, "sleeper", group=True)
        lifecycle.phase("test.sleeping", "one child")
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler raises at the next bytecode; never reached
            pass
        pytest.fail("SIGTERM did not stop the run")
    assert stop.value.signum == signal.SIGTERM and stop.value.exit_code == 143
    assert run.phase == "test.sleeping" and run.stopped == [children[0].pid]
    _wait_dead(children[0])
    assert work is not None and not work.exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the run's handlers are its own only


def test_a_signal_while_a_process_starts_waits_until_its_pid_is_recorded(tmp_path: Path, children: list) -> None:
    work = tmp_path / "w"
    with pytest.raises(Stopped), Run(work) as run:
        with shielded():
            os.kill(os.getpid(), signal.SIGINT)
            children.append(subprocess.Popen(SLEEP))  # still runs: the signal is held back
            record(children[-1].pid, "sleeper")
        pytest.fail("the deferred SIGINT was not raised when the shield ended")
    assert run.stopped == [children[0].pid]
    _wait_dead(children[0])
    assert not work.exists()


def test_a_second_bench_refuses_a_held_work_directory(tmp_path: Path) -> None:
    work = tmp_path / "w"
    with Run(work):
        (work / "marker").write_text("the first bench's")
        busy = rf"{re.escape(str(work))} is in use by another bench \(pid {os.getpid()}\)"
        with pytest.raises(WorkDirBusy, match=busy), Run(work):
            pytest.fail("entered a held work directory")
        assert (work / "marker").read_text() == "the first bench's" and (work / LOCK).exists()
    assert not work.exists()


def test_a_non_bench_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(WorkDirBusy, match="holds no bench lock"), Run(tmp_path):
        pytest.fail("took a directory that was not a bench's")
    assert (tmp_path / "precious.txt").read_text() == "x"


def test_a_dead_holders_leftovers_are_stopped_by_pid_then_taken_over(tmp_path: Path, children: list) -> None:
    work = tmp_path / "w"
    (work / "gw000").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    (work / LOCK).write_text(f"{dead.pid} 1\n")  # its holder is gone: the lock is not held
    recorded = subprocess.Popen(SLEEP)  # in the registry, with its start time
    named = subprocess.Popen([*SLEEP, str(work / "gw000")])  # a pid file's process naming the work dir
    stranger = subprocess.Popen(SLEEP)  # a pid file's process that is not the bench's: left alone
    children.extend([recorded, named, stranger])
    (work / REGISTRY).write_text(f"{recorded.pid} {start_time(recorded.pid)} one sleeper\n")
    (work / "gw000" / "ovsdb-server.pid").write_text(f"{named.pid}\n")
    (work / "stranger.pid").write_text(f"{stranger.pid}\n")
    with Run(work) as run:
        _wait_dead(recorded)
        _wait_dead(named)
        assert alive(stranger.pid)
        assert sorted(p.name for p in work.iterdir()) == [LOCK]  # the old run's files are gone
        assert (work / LOCK).read_text().split()[0] == str(os.getpid())
        assert run.dir == work.resolve()
    assert not work.exists()
