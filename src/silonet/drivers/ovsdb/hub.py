"""A few threads hold every gateway's OVSDB connection: one ``epoll`` set per hub thread.

A thread per gateway made 1,000 gateways 1,000 runnable threads: they starved each other of
the interpreter's lock, echoes to ovsdb-server's 5 s inactivity probe came late, the server
dropped the connection and the gateway resynced whole, which starved the rest more. A hub
runs a link (``connection.Link``: one IDL) only when one of its descriptors is ready, its
timer is due or a job was handed to it, so an idle fabric costs nothing and a busy one costs
what moved. Registrations persist between turns and change only for the links that ran: a
link's waits change only when it runs (or its absolute deadline passes).

Connecting (the schema fetch, a blocking exchange of up to 5 s) runs in a small pool beside
the hubs, so a device that does not answer holds up no other gateway. So do the links' jobs
(interpreting a replica, building a write of hundreds of operations): run on the hub, a round
of 75 gateways' first writes took longer than the device's 5 s inactivity probe and answers to
its echoes came too late (300 gateways: 655 disconnects in one converge). A link is skipped
only while its own job runs; while the job waits for a worker, the link keeps being turned.

Connections that come up are paced (``Resyncs``): each one's first monitor reply is the whole
replica, parsed in a hub turn (~0.15 s of the interpreter for a gateway of 100 VNIs flooding to
99 peers). Hundreds at once (a manager started on a loaded fabric, or devices that dropped many
links at once) kept the hubs from answering the others' echoes in time, which dropped more:
a storm that did not end. A link waits, disconnected, for one of a few slots before connecting,
and holds it until its replica is whole.

A calm hub (none of its links writing, running jobs or resyncing: ``Turned.pressing``) turns its
links at most every QUIET_S: what arrived meanwhile (mostly the devices' echo requests, 200 a
second at 1,000 gateways) is handled in one wake-up. Answered one wake-up each, an echo cost a hub
~230 us of CPU; in batches every 0.25 s ~120 us (1,000 idle gateways: the hubs' CPU 185 -> 97 ticks
in 40 s, the manager's idle 6.0-8.0 -> 3.7 %); every second, 45 ticks in 30 s where 0.25 s took 59
(1,000 links to one ovsdb-server probing every 5 s: 51.7 against 59-71 us of the process's CPU per
echo). A device drops a connection it heard nothing from for two of its probe intervals (5 s each
by default), so a second is far inside that; but a device may probe every second (ovsdb-server's
floor), and answered within a second it was dropped again and again (200 links probed every 1 s:
1,374 reconnections in 20 s). So a hub whose links include one whose device probes more often
than every QUIET_GAP_S, or has not shown how often yet (``Turned.quick``: the time between its
last two echoes, ``session.CountedSession``), answers within QUIET_QUICK_S.

A link woken by its socket first tries to answer what woke it as a lone echo request, with no
turn (``Turned.echoed``, ``session.answer_echo``): its waits stay as they were, but for the probe
deadline the answer moved (its old timer entry goes stale). At 1,000 idle gateways that took the
manager from 2.08-2.25 to 1.73-1.80 % of a core (fresh fleets, same hour; 1,000 links to one
ovsdb-server: 42-61 against 67-76 us of the process's CPU per echo), and moving the deadline
(else each link was turned once per 30 s probe interval for nothing) to 1.48-1.55 against 1.72.

A job handed to the hub (a write) ends the wait at once and the answer to a write is never held
(its link presses until it arrives); a device's own change (a MAC it learned, a fault, drift) is
read at most QUIET_S late, and a pass never plans on it unread (``Link.unread``).

There are no more hubs than cores (at most HUBS): the hubs share one interpreter, so a hub beyond
the cores runs nothing in parallel and only splits the wake-ups and hands the interpreter's lock
around more often (2 hubs on 2 cores: 44.7 against 51.2 us per echo, the idle manager 2.72 against
2.85 % of a core, the converge of 1,000 gateways 46.7 against 50.6 s).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import ovs.timeval

log = logging.getLogger(__name__)
# threads holding connections, each its own epoll set: no more than the cores this process may use
# (its CPU affinity; a cgroup's quota is not seen), or SILONET_OVSDB_HUBS (0 or unset: that default)
HUBS = int(os.environ.get("SILONET_OVSDB_HUBS", "0")) or min(4, len(os.sched_getaffinity(0)))
CONNECTORS = 8  # schema fetches at once (each may wait CONNECT_TIMEOUT_MS for a silent device)
WORKERS = 4  # threads running links' jobs (a read's interpretation, a write's build): off the hubs
RESYNCS = int(os.environ.get("SILONET_OVSDB_RESYNCS", "8"))  # links between connecting and a whole replica
QUIET_S = 1.0  # a calm hub turns its links at most this often: a device's echo or own change waits that long
# ... unless one of its links is ``quick``: its device probes more often than every QUIET_GAP_S (or
# has not shown how often yet), and its echoes are answered within QUIET_QUICK_S
QUIET_QUICK_S = 0.25
QUIET_GAP_S = 4 * QUIET_S


class Woken(Protocol):
    def wake(self) -> None:
        """Have the link turned soon (by its hub)."""


class Resyncs:
    """At most ``size`` links connecting at once, from the connection attempt until the first
    monitor reply is parsed; the others queue, first come first served, and are woken when a
    slot is handed to them (never polled)."""

    def __init__(self, size: int = RESYNCS) -> None:
        self.size = max(1, size)
        self._free = self.size
        self._waiting: dict[Woken, None] = {}  # insertion-ordered: the queue
        self._granted: set[Woken] = set()
        self._lock = threading.Lock()

    def take(self, link: Woken) -> bool:
        """A slot for ``link`` now, or False with the link queued (woken when one is its)."""
        with self._lock:
            if link in self._granted:
                self._granted.discard(link)
                return True
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return True
            self._waiting.setdefault(link, None)
            return False

    def give(self) -> None:
        """A slot back: to the first link waiting (woken), else free."""
        with self._lock:
            nxt = next(iter(self._waiting), None)
            if nxt is None:
                self._free = min(self.size, self._free + 1)
                return
            del self._waiting[nxt]
            self._granted.add(nxt)
        nxt.wake()

    def forget(self, link: Woken) -> None:
        """``link`` closes: out of the queue, and a slot handed to it goes on."""
        with self._lock:
            self._waiting.pop(link, None)
            granted = link in self._granted
            self._granted.discard(link)
        if granted:
            self.give()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def queued(self, link: Woken) -> bool:
        """Whether ``link`` waits in the queue for a slot."""
        with self._lock:
            return link in self._waiting


class Turned(Protocol):
    """What a hub drives (``connection.Link``)."""

    def turn(self, waits: Waits) -> bool:
        """Do what is due; register what to wait for next in ``waits``. False: the link is done."""

    def pressing(self) -> bool:
        """Whether what it waits for must be handled at once (a write's answer, a resync), not
        within QUIET_S."""

    def ping(self) -> None:
        """Tell the device we are alive (an echo request), unless a job holds the link."""

    def echoed(self, waits: Waits) -> bool:
        """Whether it answered what made its socket ready (a lone echo request) without a turn:
        ``waits`` (its last turn's) stay registered, with the deadline the answer moved."""

    def quick(self) -> bool:
        """Whether its device's echoes must be answered within QUIET_QUICK_S: it probes more
        often than every QUIET_GAP_S, or has not shown how often yet."""


class Waits:
    """A ``Poller`` that remembers instead of blocking: the descriptors one link waits on and the
    earliest moment (``ovs.timeval.msec``) it wants to run again. The OVS library registers
    through ``fd_wait``/``timer_wait``/``timer_wait_until``/``immediate_wake`` only."""

    __slots__ = ("fds", "until")

    def __init__(self) -> None:
        self.fds: dict[int, int] = {}
        self.until: float | None = None

    def fd_wait(self, fd: Any, events: int) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        if fd >= 0:  # a socket closed under the stream: its next run tells
            self.fds[fd] = self.fds.get(fd, 0) | events

    def timer_wait_until(self, msec: float) -> None:
        if self.until is None or msec < self.until:
            self.until = msec

    def timer_wait(self, msec: float) -> None:
        self.timer_wait_until(ovs.timeval.msec() + max(msec, 0))

    def immediate_wake(self) -> None:
        self.until = 0


class Hub(threading.Thread):
    """One epoll set over many links; runs only the links something happened to."""

    def __init__(self, index: int) -> None:
        super().__init__(daemon=True, name=f"ovsdb hub {index}")
        self.links: dict[Turned, Waits] = {}  # each link and what it waits for now
        self._owner: dict[int, Turned] = {}  # registered descriptor -> its link
        # epoll: a wake-up costs the descriptors that are ready, not all the hub's (poll(2) walked
        # 250 sockets per call in the kernel: most of an idle fabric's CPU at 1,000 gateways)
        self._poll = select.epoll()
        self._kicked: list[Turned] = []  # links handed a job (or just added) since the last turn
        self._members: set[Turned] = set()  # placed here and not yet done (``load``)
        # (deadline, n, link): each link's timer as of its last turn, earliest first; an entry whose
        # link has another deadline since is stale and dropped when it comes up. Scanning every
        # link's timer at each wake-up made an idle fabric's cost grow with the square of its size.
        self._timers: list[tuple[float, int, Turned]] = []
        self._pushed = itertools.count()
        self._lock = threading.Lock()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._poll.register(self._rfd, select.POLLIN)
        self._kicks = select.epoll()  # the kick pipe alone: what ends a calm wait early
        self._kicks.register(self._rfd, select.POLLIN)
        self._pressing: set[Turned] = set()  # links whose last turn left them pressing
        self._quick: set[Turned] = set()  # links whose last turn left them ``quick``: calm waits are short
        self._woke = 0.0  # time.monotonic() of the last wake-up

    @property
    def load(self) -> int:
        return len(self._members)

    def adopt(self, link: Turned) -> None:
        """Count ``link`` as held here (its first ``kick`` brings it in)."""
        with self._lock:
            self._members.add(link)

    def kick(self, link: Turned) -> None:
        """Run ``link`` soon (any thread): it has a job, was added, or was asked to stop."""
        with self._lock:
            first = not self._kicked
            self._kicked.append(link)
        if first:
            with contextlib.suppress(OSError):
                os.write(self._wfd, b"x")

    def run(self) -> None:
        due: set[Turned] = set()
        while True:
            for link in due:
                self._turn(link)
            due = self._wait()

    def _wait(self) -> set[Turned]:
        due: set[Turned] = set()
        timeout = self._due(due)
        if not due and not self._pressing and not self._kicked:
            self._calm(timeout)
            timeout = self._due(due)
        try:  # polled even when some are due, so a link that is always due starves no other
            events = self._poll.poll(0 if due else -1 if timeout < 0 else max(1, int(timeout + 1)) / 1000)
        except InterruptedError:
            events = []
        self._woke = time.monotonic()
        ready: list[Turned] = []
        for fd, _ in events:
            if fd == self._rfd:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._rfd, 512):
                        pass
            elif (link := self._owner.get(fd)) is not None:
                ready.append(link)
            else:  # no longer anyone's (closed and not reused): never wake for it again
                with contextlib.suppress(OSError):
                    self._poll.unregister(fd)
        if events:
            self._due(due)
        with self._lock:
            kicked, self._kicked = self._kicked, []
        due.update(kicked)
        for link in ready:  # a device's echo request alone: answered with no turn (most of an idle fabric's)
            waits = self.links.get(link)
            if link in due or waits is None:
                due.add(link)
                continue
            until = waits.until
            if not link.echoed(waits):
                due.add(link)
                continue
            if waits.until is not None and waits.until != until:
                heapq.heappush(self._timers, (waits.until, next(self._pushed), link))  # the old entry is stale now
            if link.quick():  # how often its device probes is known from the second answer on
                self._quick.add(link)
            else:
                self._quick.discard(link)
        return due

    def keepalive(self, busy: Turned) -> None:
        """``busy``'s turn runs long (a monitor reply of 100,000 rows read for seconds, with echoes
        of its own): every other link here pings its device, whose echoes wait for this turn."""
        for link in list(self.links):
            if link is not busy:
                link.ping()

    def _calm(self, timeout: float) -> None:
        """Until QUIET_S (QUIET_QUICK_S with a ``quick`` link) after the last wake-up, a due timer
        (``timeout`` ms, -1: none) or a kick."""
        left = self._woke + (QUIET_QUICK_S if self._quick else QUIET_S) - time.monotonic()
        if timeout >= 0:
            left = min(left, timeout / 1000)
        if left > 0:
            with contextlib.suppress(InterruptedError):
                self._kicks.poll(left)  # the byte stays in the pipe: the poll that follows reads it

    def _due(self, due: set[Turned]) -> float:
        """Add the links whose timer is due to ``due``; the milliseconds until the next (-1: none)."""
        timers, links = self._timers, self.links
        now = ovs.timeval.msec()
        while timers:
            until, _n, link = timers[0]
            waits = links.get(link)
            if waits is None or waits.until != until:
                heapq.heappop(timers)  # stale: the link turned since, or left
            elif until <= now:
                heapq.heappop(timers)
                due.add(link)
            else:
                return until - now
        return -1.0

    def _turn(self, link: Turned) -> None:
        waits = Waits()
        try:
            alive = link.turn(waits)
        except Exception:  # a link's own failures are its own; this is a bug, kept from the others
            log.exception("ovsdb hub: %r failed a turn; dropped", link)
            alive = False
        old = self.links.pop(link, None)
        if alive and link.pressing():
            self._pressing.add(link)
        else:
            self._pressing.discard(link)
        if alive and link.quick():
            self._quick.add(link)
        else:
            self._quick.discard(link)
        if alive:
            self.links[link] = waits
            if waits.until is not None:
                heapq.heappush(self._timers, (waits.until, next(self._pushed), link))
        else:
            with self._lock:
                self._members.discard(link)
        self._register(link, old.fds if old is not None else {}, waits.fds if alive else {})

    def _register(self, link: Turned, old: dict[int, int], new: dict[int, int]) -> None:
        """The link's descriptors as its turn left them. epoll forgets a descriptor when it is
        closed, and the number may come back as a new socket (a reconnect in the same turn):
        each one is modified, or registered when epoll no longer knows it."""
        for fd in old.keys() - new.keys():
            if self._owner.get(fd) is link:  # another link may hold the number by now
                del self._owner[fd]
                with contextlib.suppress(OSError):
                    self._poll.unregister(fd)
        for fd, events in new.items():
            self._owner[fd] = link
            try:
                self._poll.modify(fd, events)
            except FileNotFoundError:
                self._poll.register(fd, events)


class Hubs:
    """The hub threads of this process, started as links arrive, and the connectors' pool."""

    def __init__(self, size: int = HUBS) -> None:
        self.size = max(1, size)
        self.hubs: list[Hub] = []
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None
        self.resyncs = Resyncs()

    def place(self, link: Turned) -> Hub:
        """The least loaded hub (a new one while there are fewer than ``size``), counting ``link``
        there; the caller keeps the hub, then kicks it (a turn may come at once)."""
        with self._lock:
            if len(self.hubs) < self.size:
                hub = Hub(len(self.hubs))
                hub.start()
                self.hubs.append(hub)
            else:
                hub = min(self.hubs, key=lambda h: h.load)
            hub.adopt(link)
            return hub

    def connect(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run a blocking connection attempt beside the hubs."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(CONNECTORS, thread_name_prefix="ovsdb connect")
            return self._pool.submit(fn)

    def work(self, fn: Callable[[], Any]) -> None:
        """Run a link's jobs beside the hubs (the link is not turned meanwhile)."""
        with self._lock:
            if self._workers is None:
                self._workers = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="ovsdb job")
            self._workers.submit(fn)


_HUBS: Hubs | None = None
_HUBS_LOCK = threading.Lock()


def hubs() -> Hubs:
    """This process's hubs, made on first use (no import-time threads)."""
    global _HUBS
    with _HUBS_LOCK:
        if _HUBS is None:
            _HUBS = Hubs()
        return _HUBS
