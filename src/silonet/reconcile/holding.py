"""The lease loop: which gateways this replica may write, and until when (store/leases.py).

Leases are renewed and taken every TTL/3, sooner when another replica's lease is about to expire
or new gateways appeared, and again within RETRY_BUSY_S when a round gave up waiting for the
database's lock (SQLite's one write lock, shared with the recorder: ``Leases.busy_s``). A worker
writes only while ``holds`` says so by this replica's own clock (renewal time + TTL - margin,
before the database's expiry), so two replicas never write one gateway at once; and it writes
under the lease's ``epoch``, which the device checks in the write's own transaction, so a replica
that stalled past that check cannot land its write after its successor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection

from silonet.store.leases import Leases, Round, busy

log = logging.getLogger("silonet.reconcile")
RETRY_BUSY_S = 0.1  # after a round that waited too long for the database's lock

# after each round: the round, and whether the leases had lapsed before it (writes were refused)
Moved = Callable[[Round, bool], Awaitable[None]]


class Holding:
    """This replica's leases; ``moved`` acts on each round (start and stop workers)."""

    def __init__(self, leases: Leases, moved: Moved) -> None:
        self.leases = leases
        self.held: frozenset[str] = frozenset()  # gateways this replica holds leases on ...
        self.valid_until = 0.0  # ... until this monotonic time (the fence)
        self.epochs: dict[str, int] = {}  # ... under these lease epochs (the device's fence)
        self._moved = moved
        self._claim = threading.Event()  # new gateways: take their leases now, not at the next round
        self._handing = threading.Lock()
        self._handed: tuple[Round, bool] | None = None  # the newest round the loop has yet to act on
        self._mover: asyncio.Future | None = None  # the loop's task acting on handed rounds
        self._round: asyncio.Future | None = None  # a round's thread, which a cancellation does not stop

    def holds(self, gateway: str) -> bool:
        """Whether this replica may write the gateway now: it holds the lease, and the lease is
        still valid by the local clock (callable from any thread)."""
        return gateway in self.held and time.monotonic() < self.valid_until

    def epoch(self, gateway: str) -> int | None:
        """The epoch of this replica's lease on the gateway, as its last round (or ``adopt``) said;
        None when it holds none."""
        return self.epochs.get(gateway) if gateway in self.held else None

    async def adopt(self, gateway: str, device: int) -> int | None:
        """The device holds a higher epoch while this replica still holds the lease: one from before
        the lease's history (``Leases.adopt``). The epoch to write under now, or None."""
        if not self.holds(gateway):
            return None
        try:
            epoch = await asyncio.to_thread(self.leases.adopt, gateway, device)
        except Exception:
            log.exception("gateway %s: moving its lease epoch past the device's failed", gateway)
            return None
        if epoch is not None and gateway in self.held:  # a round meanwhile may have taken it again, higher
            self.epochs[gateway] = epoch = max(epoch, self.epochs.get(gateway, 0))
        return epoch

    def claim(self) -> None:
        """New gateways in the intent: a round now, not at the next (any thread)."""
        self._claim.set()

    async def run(self, delay: float) -> None:
        """The rounds (``delay``: seconds until the first), in a thread of their own until cancelled.

        Not on the event loop: a loop busy with a thousand gateways' passes ran a round seconds
        late, the leases lapsed (82,000 refused writes converging 1,000 gateways) and each lapse
        woke every worker again. The thread renews on time whatever the loop does; what a round
        moves (workers to start or stop, leases to give back) is handed to the loop, newest first."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        thread = threading.Thread(target=self._rounds, args=(loop, delay, stop), name="reconcile-leases",
                                  daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            stop.set()
            self._claim.set()
            await asyncio.to_thread(thread.join, 15)
            if self._mover is not None:  # no worker started after the reconciler stopped them all
                self._mover.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._mover

    def _rounds(self, loop: asyncio.AbstractEventLoop, delay: float, stop: threading.Event) -> None:
        every = self.leases.ttl / 3
        busy_streak = 0  # rounds in a row that found the database's lock taken
        while True:
            self._claim.wait(delay)
            self._claim.clear()
            if stop.is_set():
                return
            began = time.monotonic()
            try:
                r = self.leases.round()
            except Exception as err:
                delay = self._failed(err, busy_streak)
                busy_streak = busy_streak + 1 if busy(err) else 0
                continue
            busy_streak = 0
            if (took := time.monotonic() - began) > every:
                log.warning("a lease round took %.1f s (renewed every %.1f s, valid %.1f s): a busy database or "
                            "process", took, every, self.leases.ttl - self.leases.margin)
            if time.monotonic() >= r.valid_until:
                log.warning("the leases lapsed before their renewal committed (%.1f s after it began)", took)
            if stop.is_set():  # stopping: the leases are about to be given back, take nothing
                return
            lapsed = time.monotonic() >= self.valid_until
            self.held, self.valid_until, self.epochs = r.held - r.excess, r.valid_until, dict(r.epochs)
            with self._handing:
                pending = self._handed
                self._handed = (r, lapsed or (pending is not None and pending[1]))
            if pending is None:
                with contextlib.suppress(RuntimeError):  # the loop closed: the reconciler is gone
                    loop.call_soon_threadsafe(self._hand_over)
            # counted from the round's start: a round that waited seconds for the database is
            # followed at once, not a period later (the fence runs from each round's start)
            delay = every if r.next_expiry_s is None else min(every, r.next_expiry_s + 0.05)
            delay = max(began + delay - time.monotonic(), 0.05)

    def _failed(self, err: Exception, streak: int) -> float:
        """After a failed round, the seconds until the next: soon when it only waited too long for a
        lock (``Leases.busy_s``; the fence still runs, and lapses unless a round commits), else a
        second (a database that is down is not hammered)."""
        if busy(err):
            if streak == 0:
                log.warning("a lease round waited %.1f s for the database's lock; trying again in %.1f s",
                            self.leases.busy_s, RETRY_BUSY_S)
            return RETRY_BUSY_S
        log.exception("renewing the gateway leases failed", exc_info=err)
        return min(self.leases.ttl / 3, 1.0)

    def _hand_over(self) -> None:
        """One mover at a time: a round handed over while it acts is taken by its next turn."""
        if self._mover is None or self._mover.done():
            self._mover = task = asyncio.ensure_future(self._moving())
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log.error(
                "acting on a lease round failed", exc_info=t.exception()))

    async def _moving(self) -> None:
        """On the loop: the newest round's moves (an older one not acted on yet is superseded by it:
        it says again what is still to give back)."""
        while True:
            with self._handing:
                handed, self._handed = self._handed, None
            if handed is None:
                return
            await self._moved(*handed)

    async def round(self) -> float:
        """One round; returns the seconds until the next."""
        every = self.leases.ttl / 3
        try:
            self._round = asyncio.ensure_future(asyncio.to_thread(self.leases.round))
            r: Round = await asyncio.shield(self._round)
        except Exception as err:
            return self._failed(err, 0)
        lapsed = time.monotonic() >= self.valid_until
        self.held, self.valid_until, self.epochs = r.held - r.excess, r.valid_until, dict(r.epochs)
        await self._moved(r, lapsed)
        if r.next_expiry_s is not None:
            every = min(every, r.next_expiry_s + 0.05)
        return max(every, 0.05)

    async def give_back(self, gateways: Collection[str]) -> None:
        """Release leases beyond this replica's share (their workers stopped first)."""
        try:
            await asyncio.to_thread(self.leases.release, gateways)
        except Exception:
            log.exception("giving back %d lease(s) failed; they expire", len(gateways))

    def drop(self) -> None:
        """On stop, before the workers stop: nothing may be written or recorded from now on."""
        self.held = frozenset()

    async def release(self) -> None:
        """On stop, every worker stopped: others may take over at once instead of after the TTL."""
        if self._round is not None:  # else it could take leases again after they were given back
            await asyncio.wait({self._round}, timeout=10)
        try:
            await asyncio.to_thread(self.leases.release)
        except Exception:
            log.exception("releasing the leases failed; they expire in %.0f s", self.leases.ttl)
