"""``silonet serve --workers N``: the gateways driven by N reconcile processes behind one API.

Why: a reconcile pass is Python CPU (the IDL's JSON, the replica, the plan), and one interpreter
runs one pass at a time: a change that touches many gateways, or a fabric of a thousand, waits
for them in turn. Here the serving process (the "front": the API, the Manager, the webhook
dispatcher) drives nothing; each child is a replica of its own (its replica id, its leases, its
Reconciler on its own ``Runtime``) and the leases share the gateways between the children exactly
as between replicas on several hosts.

What crosses a child's pipe is typed (pickled dataclasses), both ways, and nobody polls for it:

- to the child: every ``IntentChanged`` the front's writes publish, with the model calls each
  made (``Inventory.journal``); the child replays them on its copy of the intent
  (``IntentCache.replay``), so a change costs it the change, not a reload of the whole intent;
- from the child: ``Recorded`` (realized generations, gateways that failed) for the front's
  ``RealizationBoard`` (``?wait=`` waiters wake on it) and ``Published`` for its ``EventFeed``
  (event stream readers, the dispatcher);
- a scrape of the front's ``GET /metrics`` asks each child (``MetricsAsked``) for its reconcile
  metrics and merges the answers (``MetricsTold``; ``reconcile/metrics.merge``): one set of series, as
  one process would show, whatever the number of children.

Writes made elsewhere (the CLI on the same SQLite file, another host's replica, a child's own
decommissioning) are found through the database as before. The memory driver keeps its devices
in one process: a child refuses it (``drivers/memory.py``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from silonet.drivers.memory import RECONCILE_CHILD
from silonet.reconcile.metrics import merge
from silonet.signals import EventFeed, IntentChanged, RealizationBoard

log = logging.getLogger("silonet.workers")
STOP_GRACE_S = 15.0  # a child stops its workers, drains its recorder and releases its leases
RESTART_MAX_S = 30.0
METRICS_WAIT_S = 2.0  # a scrape waits this long for the children's metrics


@dataclass(frozen=True)
class Recorded:
    """A child committed realization records (``RealizationBoard.recorded``'s arguments)."""

    realized: dict[str, int]
    failed: tuple[str, ...]


@dataclass(frozen=True)
class Published:
    """A child committed events."""


@dataclass(frozen=True)
class MetricsAsked:
    """The front is scraped: the child answers with its registry's families (``MetricsTold``)."""

    ask: int


@dataclass(frozen=True)
class MetricsTold:
    """A child's reconcile metrics (``prometheus_client`` families, as its registry collects them)."""

    ask: int
    families: list


@dataclass(frozen=True)
class ChildSpec:
    """What a reconcile child is started with (everything else it reads from the environment)."""

    index: int
    count: int  # the children started together: each takes its share of the gateways from the start
    database_url: str
    period: float
    log_format: str


class _Pipe:
    """One end of a child's pipe; several threads send on it (recorders, the bus)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: Any) -> bool:
        with self._lock:
            try:
                self.conn.send(message)
            except (OSError, EOFError, ValueError):  # the other end is gone: it restarts afresh
                return False
        return True


class RelayBoard(RealizationBoard):
    """A child's board: its waiters as usual, and the front told of every recording."""

    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self._pipe = pipe

    def recorded(self, realized: dict[str, int] | None = None, failed: Iterable[str] = ()) -> None:
        failed = tuple(failed)
        super().recorded(realized, failed)
        self._pipe.send(Recorded(dict(realized or {}), failed))


class RelayFeed(EventFeed):
    """A child's feed: the front told of every commit of events."""

    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self._pipe = pipe

    def published(self) -> None:
        super().published()
        self._pipe.send(Published())


# ---------------------------------------------------------------------- the child
def child_entry(fd: int) -> None:
    """A reconcile child's process, started as ``python -m silonet.workers FD`` (``_Process``):
    its end of the pipe is descriptor ``fd``, and the first message down it is its ``ChildSpec``."""
    conn = Connection(fd)
    spec = conn.recv()
    if not isinstance(spec, ChildSpec):
        raise SystemExit(f"silonet.workers: the front sent {type(spec).__name__}, not a ChildSpec")
    child_main(spec, conn)


def child_main(spec: ChildSpec, conn: Connection) -> None:
    """A reconcile child's process. Ctrl-C is the front's to handle: it tells the children to stop
    through their pipes; SIGTERM stops one as well."""
    from silonet import limits, logs

    multiprocessing.current_process().name = f"{RECONCILE_CHILD}{spec.index}"  # the memory driver asks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure(spec.log_format, logging.INFO)
    limits.raise_open_files()
    limits.quicker_switches()
    asyncio.run(_child(spec, conn))


async def _child(spec: ChildSpec, conn: Connection) -> None:
    from prometheus_client import CollectorRegistry, disable_created_metrics

    from silonet import heap
    from silonet.reconcile import Reconciler
    from silonet.runtime import Runtime
    from silonet.store.db import Database

    pipe = _Pipe(conn)
    db = Database(spec.database_url)  # the front migrated it before starting any child
    runtime = Runtime(db, board=RelayBoard(pipe), feed=RelayFeed(pipe))
    rec = Reconciler(runtime, period=spec.period, siblings=spec.count)
    disable_created_metrics()  # as the front's registry: no ``_created`` series
    registry = CollectorRegistry(auto_describe=False)
    rec.metrics.register(registry)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    heap.settle()
    heap.Trimmer().start()
    await rec.start()
    log.info("reconcile worker %d (pid %d): replica %s", spec.index, os.getpid(), rec.replica)

    told = [0, 0]  # intent writes replayed, and those that needed a reload

    def answer(ask: int) -> None:
        """On the loop, where the workers update what the collectors read."""
        pipe.send(MetricsTold(ask, list(registry.collect())))

    def listen() -> None:
        """The front's intent writes, in order; the pipe's end (or None) stops the child."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            if isinstance(message, IntentChanged):
                told[0 if runtime.intent.replay(message) else 1] += 1
            elif isinstance(message, MetricsAsked):
                loop.call_soon_threadsafe(answer, message.ask)
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=listen, name="intent from the front", daemon=True).start()
    try:
        await stop.wait()
    finally:
        await rec.stop()
        db.dispose()
        log.info("reconcile worker %d: %d intent write(s) replayed, %d not (reloaded); the intent loaded %d time(s)",
                 spec.index, told[0], told[1], runtime.intent.loads)


# ---------------------------------------------------------------------- the front
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # where ``silonet`` is imported from


class _Process:
    """A reconcile child's process, started as a plain interpreter running ``silonet.workers``
    (what ``_Child`` needs of it: ``multiprocessing.Process``' names). Not multiprocessing's spawn:
    that runs the front's main module again in each child (``silonet.cli.main``, its commands'
    imports: ~12 MiB each) and starts a resource tracker process of its own (12 MiB), where a child
    needs neither. ``sentinel`` turns readable when the process ends (a pidfd)."""

    def __init__(self, name: str, conn: socket.socket) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [_PACKAGE_ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}
        fd = conn.fileno()
        self.popen = subprocess.Popen([sys.executable, "-m", "silonet.workers", str(fd)], pass_fds=(fd,),
                                      stdin=subprocess.DEVNULL, env=env)
        if not _LIVE:  # the first child: from here on, the front's exit ends those it did not stop
            atexit.unregister(_end_live)
            atexit.register(_end_live)
        self.pid = self.popen.pid
        try:
            self.sentinel = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # before Linux 5.3: a thread waits, then closes a pipe's write end
            self.sentinel, ended = os.pipe()
            threading.Thread(target=self._watch, args=(ended,), daemon=True, name=f"{name} ended").start()
        _LIVE.add(self)

    def _watch(self, ended: int) -> None:
        with contextlib.suppress(OSError):
            self.popen.wait()
        os.close(ended)

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        if self.popen.returncode is not None:
            self.close()

    def terminate(self) -> None:
        if self.is_alive():
            self.popen.terminate()

    def kill(self) -> None:
        if self.is_alive():
            self.popen.kill()

    def close(self) -> None:
        """The pidfd, once the process was reaped (the supervisor no longer watches it)."""
        _LIVE.discard(self)
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


_LIVE: set[_Process] = set()


def _end_live() -> None:
    """A front that exits without stopping its children (a failed start): SIGTERM stops each (its
    workers stopped, its leases released), as multiprocessing ends a daemon process; a child whose
    front died without a word stops at its pipe's end."""
    for process in list(_LIVE):
        process.terminate()
    for process in list(_LIVE):
        _end(process)


class _Child:
    """One reconcile child as the front sees it: its process, its pipe, who sends and who reads."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool, self.index = pool, index
        self.process: _Process | None = None
        self.pipe: _Pipe | None = None
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.restarts = 0  # in a row: a child that stayed up RESTART_MAX_S starts the count again
        self.started = 0.0
        self.scrapes: dict[int, asyncio.Future] = {}  # asked for its metrics, not answered yet
        self.told: list | None = None  # its last answer: served again when it is busy past a scrape's wait

    def start(self) -> None:
        here_sock, there = socket.socketpair()  # what multiprocessing's duplex Pipe is on POSIX
        spec = ChildSpec(self.index, len(self.pool.children), self.pool.database_url, self.pool.period,
                         self.pool.log_format)
        try:
            process = _Process(f"{RECONCILE_CHILD}{self.index}", there)  # no forked copy of the front's threads
        except BaseException:
            here_sock.close()
            raise
        finally:
            there.close()
        here = Connection(here_sock.detach())
        here.send(spec)
        self.process, self.pipe, self.outbox = process, _Pipe(here), queue.SimpleQueue()
        self.started = time.monotonic()
        threading.Thread(target=self._send, args=(self.pipe, self.outbox), daemon=True,
                         name=f"intent to worker {self.index}").start()
        threading.Thread(target=self._read, args=(here,), daemon=True,
                         name=f"records from worker {self.index}").start()

    def tell(self, change: IntentChanged | MetricsAsked | None) -> None:
        self.outbox.put(change)

    @staticmethod
    def _send(pipe: _Pipe, outbox: queue.SimpleQueue) -> None:
        """In its own thread: a child slow to read must not hold the writer (who tells under the
        intent cache's lock)."""
        while True:
            message = outbox.get()
            if not pipe.send(message) or message is None:
                return

    def _read(self, conn: Connection) -> None:
        board, feed = self.pool.runtime.board, self.pool.runtime.feed
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if isinstance(message, Recorded):
                board.recorded(message.realized, message.failed)
            elif isinstance(message, Published):
                feed.published()
            elif isinstance(message, MetricsTold) and (scrape := self.scrapes.get(message.ask)) is not None:
                with contextlib.suppress(RuntimeError):  # the front's loop closed meanwhile: nobody asks
                    scrape.get_loop().call_soon_threadsafe(_answered, scrape, message.families)


def _answered(scrape: asyncio.Future, families: list) -> None:
    if not scrape.done():  # not given up on meanwhile
        scrape.set_result(families)


def _totals(families: list) -> list:
    """What of a child's last answer must outlive it: the totals (counters, histograms) that name no
    gateway. Summed across children, they would fall when it is replaced by a fresh one, which
    Prometheus reads as a reset (``rate`` counting everything again); a gateway's own series start
    again with whoever drives it next, as they do between replicas."""
    return [f for f in families if f.type in ("counter", "histogram")
            and not any("gateway" in s.labels for s in f.samples)]


class WorkerPool:
    """The front's reconcile children (``start``/``stop`` like a Reconciler's, from the app's
    lifespan); a child that dies is started again, after a pause that doubles up to 30 s."""

    def __init__(self, runtime: Any, count: int, database_url: str, period: float = 10.0,
                 log_format: str = "text") -> None:
        self.runtime = runtime
        self.database_url, self.period, self.log_format = database_url, period, log_format
        self.children = [_Child(self, i) for i in range(count)]
        self._watch: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._asks = itertools.count()
        self._retired: list = []  # the totals of children that ended (``_totals``), merged: kept in every scrape

    def _tell(self, change: IntentChanged) -> None:
        for child in self.children:
            child.tell(change)

    async def start(self) -> None:
        self.runtime.changes.subscribe(self._tell)
        for child in self.children:
            child.start()
        self._watch = asyncio.create_task(self._supervise(), name="reconcile-workers")

    async def metrics(self, timeout: float = METRICS_WAIT_S) -> tuple[list[list], int]:
        """The children's reconcile metrics for one scrape, and how many answered within ``timeout``:
        each child's answer, or its last one when it is busy for longer (never waited for: a
        series that vanished for one scrape would look like a reset), and the totals of children
        that ended (``_totals``)."""
        loop = asyncio.get_running_loop()
        asked: list[tuple[_Child, int, asyncio.Future]] = []
        try:
            for child in self.children:
                if child.process is not None:
                    ask, scrape = next(self._asks), loop.create_future()
                    child.scrapes[ask] = scrape
                    child.tell(MetricsAsked(ask))
                    asked.append((child, ask, scrape))
            if asked:
                await asyncio.wait([scrape for _c, _a, scrape in asked], timeout=timeout)
        finally:
            for child, ask, scrape in asked:
                child.scrapes.pop(ask, None)
                if scrape.done():
                    child.told = scrape.result()
                else:
                    scrape.cancel()
        answered = sum(scrape.done() and not scrape.cancelled() for _c, _a, scrape in asked)
        parts = [child.told for child in self.children if child.told is not None]
        return parts + ([self._retired] if self._retired else []), answered

    def _retire(self, child: _Child) -> None:
        """``child`` ended: its totals stay in every scrape from now on."""
        if child.told is not None:
            self._retired = merge([self._retired, _totals(child.told)])
            child.told = None

    async def _supervise(self) -> None:
        """Start again a child that ended while the front serves (woken by its sentinel: no polling)."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake = wake = asyncio.Event()
            sentinels = [c.process.sentinel for c in self.children if c.process is not None]
            for fd in sentinels:
                loop.add_reader(fd, wake.set)
            try:
                await wake.wait()
            finally:
                for fd in sentinels:
                    loop.remove_reader(fd)
            for child in self.children:
                if child.process is not None and not child.process.is_alive() and not self._stopping:
                    if time.monotonic() - child.started > RESTART_MAX_S:
                        child.restarts = 0
                    pause = min(RESTART_MAX_S, 2.0 ** child.restarts)
                    log.error("reconcile worker %d ended (exit code %s); starting it again in %.0f s",
                              child.index, child.process.exitcode, pause)
                    child.tell(None)  # its sender thread ends
                    child.process.close()
                    child.process = None
                    self._retire(child)
                    child.restarts += 1
                    loop.call_later(pause, self._restart, child)

    def _restart(self, child: _Child) -> None:
        if self._stopping:
            return
        try:
            child.start()
        except Exception:  # out of descriptors or memory: its share of the gateways waits, so try again
            pause = min(RESTART_MAX_S, 2.0 ** child.restarts)
            log.exception("starting reconcile worker %d again failed; next try in %.0f s", child.index, pause)
            child.restarts += 1
            asyncio.get_running_loop().call_later(pause, self._restart, child)
            return
        self._wake.set()  # the supervisor watches its new sentinel

    async def stop(self) -> None:
        self._stopping = True
        self.runtime.changes.unsubscribe(self._tell)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for child in self.children:
            child.tell(None)
        await asyncio.gather(*(asyncio.to_thread(_end, c.process) for c in self.children if c.process is not None))


def _end(process: _Process) -> None:
    """Until the child stopped by itself (its leases released), else SIGTERM, else SIGKILL."""
    process.join(STOP_GRACE_S)
    if process.is_alive():
        process.terminate()
        process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


if __name__ == "__main__":  # ``python -m silonet.workers FD``: a child; its code is the module's, not __main__'s
    from silonet.workers import child_entry as _entry

    _entry(int(sys.argv[1]))
