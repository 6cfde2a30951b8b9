"""What the parts of one process tell each other, typed and in the open (docs/architecture.md,
"Signals"): writers tell the reconciler which gateways and VNIs an intent write changed
(``IntentChanged`` on an ``IntentBus``), and the reconciler tells waiters what it recorded (the
``RealizationBoard``). The instances are the wiring's (``silonet.runtime.Runtime``): whoever
starts the program builds them once and hands them to the Manager and the Reconciler.

Nothing here touches the database: these say what this process saw, and every reader falls back
to the database for what other processes wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class IntentChanged:
    """An intent write committed at ``generation``: the gateways whose desired state it changed,
    the VNIs it changed them at (None: anything may have changed), the request id of the write
    (the cause of the passes it wakes), and the model calls it made (``Inventory.journal``: a
    reconcile worker process replays them on its copy of the intent, ``silonet.workers``)."""

    generation: int
    gateways: frozenset[str]
    vnis: frozenset[int] | None
    cause: str | None = None
    journal: tuple[tuple[str, tuple, dict], ...] | None = None


IntentListener = Callable[[IntentChanged], None]


class IntentBus:
    """Intent changes, from the writer's thread to whoever subscribed (the reconciler).

    ``publish`` runs the listeners in the writer's thread, right after the commit and still under
    the intent cache's lock (``IntentCache.transaction``): a listener that notes the change there
    is done before anyone can compile the new generation. Listeners must be quick and never block.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: tuple[IntentListener, ...] = ()  # replaced, never changed: publish takes no lock

    def subscribe(self, listener: IntentListener) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def unsubscribe(self, listener: IntentListener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def publish(self, change: IntentChanged) -> None:
        for listener in self._listeners:
            listener(change)


ActualSource = Callable[[str], dict | None]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out meanwhile cancelled it
        future.set_result(None)


class Pulse:
    """A sequence number that moves when something happened in this process, and waiters on it:
    threads (``wait``) and coroutines (``wait_async``, holding no thread), woken from any thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._seq = 0
        # waiters on an event loop (API ``?wait=``, the event stream): woken through their loop
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def _moved(self) -> None:
        """Call with ``_changed`` held."""
        self._seq += 1
        self._changed.notify_all()
        for loop, future in self._futures:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                loop.call_soon_threadsafe(_settle, future)

    def seq(self) -> int:
        return self._seq

    def wait(self, seq: int, timeout: float) -> bool:
        """Until the sequence moved past ``seq`` (True), or ``timeout`` s (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._seq != seq, timeout)

    async def wait_async(self, seq: int, timeout: float) -> bool:
        """``wait`` on the event loop: the waiter holds no thread (a thread per waiter let a few
        dozen ``?wait=`` requests exhaust the pool that every sync route and token check share)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._changed:
            if self._seq != seq:
                return True
            self._futures.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._changed:
                self._futures.discard(entry)
        return self._seq != seq


class EventFeed(Pulse):
    """Events this process committed (store/events.py): the event stream's readers and the webhook
    dispatcher wake at once; other processes' events are found by reading the database on a short
    timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.webhooks_made = 0  # webhooks this process created: the dispatcher looks again at once

    def published(self) -> None:
        with self._changed:
            self._moved()

    def webhook_made(self) -> None:
        with self._changed:
            self.webhooks_made += 1
            self._moved()


class RealizationBoard(Pulse):
    """What this process's reconciler recorded, for the waiters of this process (``?wait=``,
    ``--wait``, a decommissioning's end): realized generations (they only grow), the gateways it
    recorded errors for, a sequence number that moves at each recording, and the actual state its
    workers last read. A waiter wakes at once on a recording here and needs no query to see it;
    writers in other processes do not signal here, so waiters re-check the database on a short
    timeout too."""

    def __init__(self) -> None:
        super().__init__()
        self._realized: dict[str, int] = {}  # gateway -> newest realized generation this process recorded
        self._failed_seq: dict[str, int] = {}  # gateway -> seq at which this process last recorded an error
        self._actual: tuple[ActualSource, ...] = ()

    # ------------------------------------------------------------- recording
    def recorded(self, realized: dict[str, int] | None = None, failed: Iterable[str] = ()) -> None:
        """A realization record changed (the reconciler calls this after its commit), with the
        generations it recorded as realized and the gateways it recorded an error for."""
        with self._changed:
            for gateway, generation in (realized or {}).items():
                if generation > self._realized.get(gateway, -1):
                    self._realized[gateway] = generation
            self._failed_seq.update(dict.fromkeys(failed, self._seq + 1))
            self._moved()

    # --------------------------------------------------------------- reading

    def failed_since(self, gateways: list[str], seq: int) -> bool:
        """Whether this process recorded an error for one of them after ``seq``."""
        failed = self._failed_seq
        return any(failed.get(g, -1) > seq for g in gateways)

    def realized_here(self, gateways: list[str], generation: int) -> bool:
        """Whether this process committed, for every gateway, a realization of ``generation``
        or newer (realized generations only grow, so the database says the same or more)."""
        realized = self._realized
        return all(realized.get(g, -1) >= generation for g in gateways)

    def healthy_here(self, gateways: list[str]) -> bool:
        """Whether this process recorded realizations of every gateway and never an error for
        any: then its database records say nothing this process does not know."""
        realized, failed = self._realized, self._failed_seq
        return all(g in realized and g not in failed for g in gateways)

    # ---------------------------------------------------------- actual state
    def show_actual(self, source: ActualSource) -> None:
        """A reconciler of this process tells what its workers last read (``source``: a gateway's
        actual state, or None when it does not drive it)."""
        with self._changed:
            self._actual = (*self._actual, source)

    def hide_actual(self, source: ActualSource) -> None:
        with self._changed:
            self._actual = tuple(x for x in self._actual if x != source)

    def actual_here(self, gateway: str) -> dict | None:
        """What the gateway holds as a reconciler of this process last read it (None: not driven
        here). Fresher than the recorded ``actual``, which is written at most every second."""
        for source in self._actual:
            actual = source(gateway)
            if actual is not None:
                return actual
        return None
