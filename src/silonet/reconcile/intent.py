"""The intent source: what each gateway should hold, for its worker's pass.

It keeps the change notes (which VNIs each write changed, per gateway, from ``IntentChanged``)
and one compiler per intent state, shared by the workers one change woke. A pass that settled
before asks only for what changed since (``gateway_part``), else for the whole desired state.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from silonet.errors import DeviceError
from silonet.model import Inventory
from silonet.plan import Compiler, GatewayState
from silonet.reconcile.decommission import leaving
from silonet.reconcile.macs import MacRelay
from silonet.store.cache import IntentCache
from silonet.store.db import Database

MAX_NOTED = 1000  # changes noted for one gateway before its next pass


@dataclass(frozen=True)
class Intent:
    """The intent a settled pass realized: its generation and the cache load it came from."""

    generation: int
    loads: int


# (state, generation, the VNIs it is limited to or None for the whole state, cache loads)
Desired = tuple[GatewayState, int, frozenset[int] | None, int]


class _Busy(Exception):
    """The intent cache is held by a writer: compile in a thread instead of blocking the loop."""


class IntentSource:
    """The desired state of the gateways this replica drives, from the shared intent cache."""

    def __init__(self, db: Database, cache: IntentCache, macs: MacRelay) -> None:
        self.db = db
        self.cache = cache
        self.macs = macs
        # per driven gateway: (generation, VNIs or None: anything) noted since its last pass took them
        self._changes: dict[str, list[tuple[int, frozenset[int] | None]]] = {}
        self._lock = threading.Lock()
        # shared by the workers while the intent stands: (inventory, its state, compiler)
        self._compiler: tuple[Inventory, tuple[int, int, int], Compiler] | None = None
        # per gateway: its mode in the intent its state was last compiled from (the cache may have been
        # reloaded to another process's write before this process heard of it): a worker writes only
        # when this and the newest change it heard of both say enforce
        self.modes: dict[str, str] = {}

    # ------------------------------------------------------------ change notes
    def watch(self, gateway: str) -> None:
        """A worker drives the gateway now: note its changes (a new worker's first pass compiles
        everything, so nothing before matters)."""
        with self._lock:
            self._changes.setdefault(gateway, [])

    def unwatch(self, gateway: str) -> None:
        with self._lock:
            self._changes.pop(gateway, None)

    def note(self, gateways: Iterable[str], generation: int, vnis: frozenset[int] | None) -> None:
        """What changed for these gateways at ``generation`` (None: anything), for their next pass
        (callable from any thread). A writer's change is noted in its thread under the intent
        cache's lock (``IntentCache.transaction``): a pass that compiles at a generation finds
        every change up to it noted."""
        with self._lock:
            for name in gateways:
                noted = self._changes.get(name)
                if noted is not None:
                    noted.append((generation, vnis))
                    if len(noted) > MAX_NOTED:  # a worker this far behind compiles everything
                        noted[:] = [(max(g for g, _ in noted), None)]

    def _changed(self, gateway: str, generation: int) -> frozenset[int] | None:
        """The VNIs noted for ``gateway`` up to ``generation`` (taken), None when unknown."""
        with self._lock:
            noted = self._changes.get(gateway)
            if not noted:
                return frozenset()
            taken = [v for g, v in noted if g <= generation]
            noted[:] = [(g, v) for g, v in noted if g > generation]
        if any(v is None for v in taken):
            return None
        return frozenset().union(*taken)

    # ---------------------------------------------------------------- desired
    async def desired(self, gateway: str, since: Intent | None) -> Desired:
        """``intent`` right here when nobody holds the cache (no thread hop), else in a thread."""
        try:
            return self._now(gateway, since)
        except _Busy:
            return await asyncio.to_thread(self.intent, gateway, since)

    def _now(self, gateway: str, since: Intent | None) -> Desired:
        cache = self.cache
        if cache.inventory is not None and cache.lock.acquire(blocking=False):
            try:
                return self.intent(gateway, since)
            finally:
                cache.lock.release()
        raise _Busy

    def intent(self, gateway: str, since: Intent | None) -> Desired:
        """What the gateway should hold, at the generation the cache is at: (state, generation,
        VNIs, cache loads). With VNIs, the state is only what those VNIs mean, and nothing else
        changed since ``since`` (the generation and cache load of the last settled pass); with
        None, it is the whole desired state.

        The cache as it stands, without asking the database: writers in this process move it
        on commit, and the supervisor reloads it when another process wrote (a reload cannot
        say what changed: the whole state then)."""
        cache = self.cache
        with cache.lock:
            if cache.inventory is not None:
                inv, generation = cache.inventory, cache.generation
            else:
                with self.db.read() as s:
                    inv, generation = cache.current(s)
            if gateway not in inv.gateways:
                raise DeviceError(gateway=gateway, reason="the gateway was removed")
            self.modes[gateway] = inv.gateways[gateway].mode  # of the very intent compiled: ``Worker.mode``
            # One compiler per intent state: the gateways one change woke share its group work
            # (the memo holds the inventory itself: compared by identity, its id is not reused).
            key = (inv.changes, generation, self.macs.seq)
            memo = self._compiler
            if memo is None or memo[0] is not inv or memo[1] != key:
                memo = self._compiler = (inv, key, Compiler(inv, None, self.macs.learned))
            vnis = self._changed(gateway, generation)
            loads = cache.loads
            if since is None or vnis is None or since.loads != loads or since.generation > generation:
                return memo[2].gateway(gateway), generation, None, loads
            return memo[2].gateway_part(gateway, vnis), generation, vnis, loads

    async def leaving(self, gateway: str) -> bool:
        """Whether the gateway is decommissioning (the cache as it stands when nobody holds it)."""
        inv = self.cache.inventory
        if inv is not None:
            return gateway in inv.decommissioning  # a hint: ``forget`` checks again in its transaction
        return await asyncio.to_thread(leaving, self.db, self.cache, gateway)
