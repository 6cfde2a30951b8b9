"""The lease loop: which gateways this replica may write, and until when (store/leases.py).

Leases are renewed and taken every TTL/3, sooner when another replica's lease is about to expire
or new gateways appeared. A worker writes only while ``holds`` says so by this replica's own
clock (renewal time + TTL - margin, before the database's expiry), so two replicas never write
one gateway at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from silonet.reconcile.tasks import wait_event
from silonet.store.leases import Leases, Round

log = logging.getLogger("silonet.reconcile")

# after each round: the round, and whether the leases had lapsed before it (writes were refused)
Moved = Callable[[Round, bool], Awaitable[None]]


class Holding:
    """This replica's leases; ``moved`` acts on each round (start and stop workers)."""

    def __init__(self, leases: Leases, moved: Moved) -> None:
        self.leases = leases
        self.held: frozenset[str] = frozenset()  # gateways this replica holds leases on ...
        self.valid_until = 0.0  # ... until this monotonic time (the fence)
        self._moved = moved
        self._claim: asyncio.Event | None = None  # new gateways: take their leases now, not at the next round
        self._round: asyncio.Future | None = None  # a round's thread, which a cancellation does not stop

    def holds(self, gateway: str) -> bool:
        """Whether this replica may write the gateway now: it holds the lease, and the lease is
        still valid by the local clock (callable from any thread)."""
        return gateway in self.held and time.monotonic() < self.valid_until

    def claim(self) -> None:
        """New gateways in the intent: a round now, not at the next (on the loop's thread; a claim
        made while the reconciler starts, before the loop runs, is kept for its first wait)."""
        if self._claim is None:
            self._claim = asyncio.Event()
        self._claim.set()

    async def run(self, delay: float) -> None:
        """The loop (``delay``: seconds until its first round)."""
        if self._claim is None:
            self._claim = asyncio.Event()
        claim = self._claim
        while True:
            await wait_event(claim, delay)
            claim.clear()
            delay = await self.round()

    async def round(self) -> float:
        """One round; returns the seconds until the next."""
        every = self.leases.ttl / 3
        try:
            self._round = asyncio.ensure_future(asyncio.to_thread(self.leases.round))
            r: Round = await asyncio.shield(self._round)
        except Exception:
            log.exception("renewing the gateway leases failed")
            return min(every, 1.0)
        lapsed = time.monotonic() >= self.valid_until
        self.held, self.valid_until = r.held - r.excess, r.valid_until
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
