"""A bench as a tool people stop and start: one ``Run`` per ``silonet bench ...`` owns its work
directory, its lock and every process it started, and removes them all however it ends.

Why each part:
- SIGINT, SIGTERM and SIGHUP become ``Stopped`` (a ``BaseException``, so no ``except Exception``
  swallows it) while the run lasts: Python's default SIGTERM ends the process without running a
  single ``finally``, which is how a time-limited bench once left its ``serve`` and four
  ``ovsdb-server``s behind. Handlers are the run's only and are restored after it.
- ``shielded()`` defers a signal while a process is being started and recorded, so no child is
  ever started without a pid the cleanup can find.
- Every process is found again by what the bench wrote: the registry (``.bench-pids``: pid,
  start time from /proc, what) and the pid files under the work directory (trusted only when
  /proc says that process names the work directory). Never by name.
- The work directory is unique by default (``mkdtemp``) and holds a lock (``.bench-lock``,
  ``fcntl.flock`` held for the run's life, pid and start time inside for the message): a second
  bench on it refuses; a dead holder's leftovers are stopped and removed before taking it over.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

REGISTRY = ".bench-pids"
LOCK = ".bench-lock"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 4.0  # SIGTERM, then SIGKILL: everything is gone well within 10 s
console = Console()


class Stopped(BaseException):
    """A signal stopped the bench; it unwinds through every ``finally``, then the process exits
    with 128 + the signal's number, as a shell reports it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class WorkDirBusy(RuntimeError):
    """Another live bench holds the work directory (or it is not a bench's to take)."""


# --------------------------------------------------------------------------- /proc
def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None when gone or a zombie: with the
    pid it names one process, whatever pid the kernel hands out later."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def alive(pid: int, start: int | None = None) -> bool:
    now = start_time(pid)
    return now is not None and (start is None or now == start)


def mentions(pid: int, path: Path) -> bool:
    """True when the process's command line or environment names ``path`` (an ovsdb-server's
    ``--pidfile=``, a ``silonet serve``'s ``SILONET_DATA_DIR``): the pid file's process is ours."""
    needle = str(path).encode()
    for part in ("cmdline", "environ"):
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
    return False


# ------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Tracked:
    pid: int
    start: int | None
    group: bool  # a session leader (start_new_session): its whole process group goes with it
    what: str


_write_lock = threading.Lock()


def _registry(work: Path) -> list[Tracked]:
    out = []
    with contextlib.suppress(OSError):
        for line in (work / REGISTRY).read_text().splitlines():
            parts = line.split(" ", 3)
            with contextlib.suppress(ValueError, IndexError):
                out.append(Tracked(int(parts[0]), int(parts[1]) if parts[1] != "-" else None, parts[2] == "group",
                                   parts[3] if len(parts) > 3 else ""))
    return out


def record(pid: int | None, what: str, group: bool = False) -> None:
    """Note a process this bench started (any thread); nothing outside a run with a directory."""
    work = next((r.dir for r in _active if r.dir is not None and r.owned), None)
    if pid is None or work is None:
        return
    line = f"{pid} {start_time(pid) or '-'} {'group' if group else 'one'} {what}\n"
    with _write_lock, open(work / REGISTRY, "a") as f:
        f.write(line)


def sweep(work: Path, grace: float = GRACE_S) -> list[int]:
    """Stop every process the registry or a pid file under ``work`` names and /proc confirms:
    SIGTERM to all at once, SIGKILL to what is left after ``grace``. Returns the pids stopped."""
    work = work.resolve()
    targets: dict[int, Tracked] = {}
    for t in _registry(work):
        if t.pid != os.getpid() and alive(t.pid, t.start):
            targets[t.pid] = t
    for pidfile in work.rglob("*.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().split()[0])
            if pid not in targets and pid != os.getpid() and alive(pid) and mentions(pid, work):
                targets[pid] = Tracked(pid, start_time(pid), False, pidfile.name)
    if not targets:
        return []
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        left = [t for t in targets.values() if alive(t.pid, t.start)]
        for t in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if t.group and os.getpgid(t.pid) == t.pid:
                    os.killpg(t.pid, sig)
                else:
                    os.kill(t.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(t.pid, t.start) for t in left):
            time.sleep(0.02)
    return sorted(targets)


# ------------------------------------------------------------------------- signals
_active: list[Run] = []  # outermost first; the outermost installed the handlers
_shield = 0  # main thread only
_pending: int | None = None


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _pending
    if any(r.cleaning for r in _active):
        return  # cleanup is bounded; a second Ctrl-C must not cut it short
    if _shield:
        _pending = _pending or signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Defer SIGINT/SIGTERM while a process is started and recorded (raised right after)."""
    global _shield, _pending
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are handled in the main thread only: nothing to defer here
        return
    _shield += 1
    try:
        yield
    finally:
        _shield -= 1
    if not _shield and _pending is not None:
        signum, _pending = _pending, None
        _on_signal(signum, None)


def phase(name: str, what: str = "") -> None:
    """Print where the bench is (``phase <name>: <what>``: people follow it in logs, a stop
    message names it) and remember it for that message."""
    if _active:
        _active[0].phase = name
    _say(f"phase {name}{': ' + what if what else ''}")


# ------------------------------------------------------------------------------ run
class Run:
    """``with Run(work, prefix) as run:`` the bench's life. ``work`` None and ``prefix`` given: a
    fresh ``mkdtemp`` under the temp directory; both None: signals only (the bench keeps its
    processes elsewhere, e.g. a lab's state directory, and stops them in its own ``finally``)."""

    def __init__(self, work: Path | None = None, prefix: str | None = None) -> None:
        self.asked = work
        self.prefix = prefix
        self.dir: Path | None = None
        self.phase: str | None = None
        self.cleaning = False
        self.stopped: list[int] = []
        self.owned = False  # the directory is this run's to clean and remove (made or locked by it)
        self._fd: int | None = None
        self._saved: dict[int, Any] = {}
        self._done = False

    def __enter__(self) -> Run:
        if not _active and threading.current_thread() is threading.main_thread():
            self._saved = {s: signal.signal(s, _on_signal) for s in SIGNALS}
        _active.append(self)
        atexit.register(self.cleanup)
        try:
            if self.asked is not None:
                self.dir = self.asked.resolve()
                self._lock(fresh=False)
            elif self.prefix is not None:
                self.dir = Path(tempfile.mkdtemp(prefix=self.prefix))
                self.owned = True
                self._lock(fresh=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        tell = isinstance(exc, Stopped) and bool(_active) and _active[0] is self
        if tell:
            where = f" during phase {self.phase}" if self.phase else ""
            _say(f"{exc}{where}: stopping what the bench started")
        try:
            self.cleanup()
        finally:
            atexit.unregister(self.cleanup)
            if self in _active:
                _active.remove(self)
            for s, old in self._saved.items():
                signal.signal(s, old)
        if isinstance(exc, Stopped) and self.dir is not None and self.owned:
            atexit.register(_last_look, self.dir)  # after the thread pools' last starts (see there)
        if tell:
            removed = f", removed {self.dir}" if self.dir is not None and self.owned else ""
            _say(f"{exc}: stopped {len(self.stopped)} process(es){removed}")

    # ------------------------------------------------------------------ work dir + lock
    def _lock(self, fresh: bool) -> None:
        """Take the directory's lock, or refuse naming the holder; clean a dead holder's leftovers."""
        assert self.dir is not None
        work = self.dir
        for _ in range(20):
            existed = work.exists() and any(work.iterdir())
            if existed and not fresh and not (work / LOCK).exists():
                self.dir = None  # not ours: never removed
                raise WorkDirBusy(f"work directory {work} is not empty and holds no bench lock: "
                                  "choose another --work (or remove it)")
            work.mkdir(parents=True, exist_ok=True)
            fd = os.open(work / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                self.dir = None  # the holder's: never touched
                raise WorkDirBusy(f"work directory {work} is in use by another bench (pid {holder}): "
                                  "stop it, or choose another --work") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(work / LOCK).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed the directory meanwhile: lock the new one
        else:
            raise WorkDirBusy(f"work directory {work}: could not take its lock")
        self._fd, self.owned = fd, True
        before = os.pread(fd, 64, 0).decode(errors="replace").split()
        if before and before[0].isdigit() and int(before[0]) != os.getpid() and alive(
                int(before[0]), int(before[1]) if len(before) > 1 and before[1].isdigit() else None):
            self._fd, self.owned = None, False
            os.close(fd)
            self.dir = None
            raise WorkDirBusy(f"work directory {work} is in use by another bench (pid {before[0]}), "
                              "whose lock this file system does not enforce: choose another --work")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {start_time(os.getpid())}\n".encode(), 0)
        if existed:
            left = sweep(work)
            _empty(work, keep=LOCK)
            _say(f"work directory {work}: took it over from a stopped bench"
                 f"{f' (pid {before[0]})' if before else ''}, stopped {len(left)} leftover process(es)")
        _say(f"work directory {work}")

    def cleanup(self) -> None:
        """Stop everything recorded or named by a pid file, remove the directory, release the
        lock. Idempotent (the ``finally`` and the atexit hook both call it); signals wait."""
        if self._done:
            return
        self.cleaning = True
        try:
            if self.dir is not None and self.owned:
                self.stopped = sweep(self.dir)
                _empty(self.dir, keep=LOCK)
                with contextlib.suppress(OSError):
                    (self.dir / LOCK).unlink()
                with contextlib.suppress(OSError):
                    self.dir.rmdir()
        finally:
            if self._fd is not None:
                os.close(self._fd)  # releases the flock
                self._fd = None
            self.cleaning = False
            self._done = True


def _last_look(work: Path) -> None:
    """At exit, after the interpreter joined the thread pools: a second signal may have cut short
    the wait for a pool's running starts, which then made their directory again after the
    cleanup. A directory without a lock is such leftovers (with one, another bench took it)."""
    if work.exists() and not (work / LOCK).exists():
        sweep(work)
        shutil.rmtree(work, ignore_errors=True)


def _say(line: str) -> None:
    """One plain line (no markup, never wrapped: logs and tests read it whole)."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _holder(fd: int) -> str:
    """The pid the lock file names (its holder writes it just after locking: wait a moment)."""
    deadline = time.monotonic() + 1.0
    while True:
        text = os.pread(fd, 64, 0).decode(errors="replace").split()
        if text or time.monotonic() > deadline:
            return text[0] if text else "unknown"
        time.sleep(0.02)


def _empty(work: Path, keep: str) -> None:
    with contextlib.suppress(OSError):
        for entry in work.iterdir():
            if entry.name == keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
