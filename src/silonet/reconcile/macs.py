"""The learned-MAC relay: the MACs each gateway learned locally are the remote MACs its peers
need (plan/compiler.py). Gateways this replica drives tell their own at each read; those other
replicas drive reach it through the database, where their owners record them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from silonet.store.db import Database
from silonet.store.repo import Repository

log = logging.getLogger("silonet.reconcile")

Learned = dict[int, frozenset[str]]  # VNI -> MACs


class MacRelay:
    """What every gateway learned, as far as this replica knows, and a sequence number that moves
    whenever that does (the compiler memo's key, reconcile/intent.py).

    ``moved(gateway)``: the MACs ``gateway`` learned changed, so every other gateway's remote MACs
    may have (None: a gateway left). The reconciler notes that and wakes the workers."""

    def __init__(self, db: Database, moved: Callable[[str | None], None]) -> None:
        self.db = db
        self.learned: dict[str, Learned] = {}
        self.seq = 0
        self._moved = moved

    def learn(self, gateway: str, macs: Learned) -> None:
        """MACs a gateway learned (its worker, at each read): when they change, its peers need new
        remote MACs."""
        if self.learned.get(gateway) != macs:
            self.learned[gateway] = macs
            self.seq += 1
            self._moved(gateway)

    async def from_peers(self, gateways: Collection[str], held: Collection[str]) -> None:
        """MACs learned on the gateways of the intent this replica does not hold, as their owners
        recorded them; those of gateways gone from the intent are dropped."""
        try:
            macs = await asyncio.to_thread(self._recorded)
        except Exception:
            log.exception("reading the MACs other replicas' gateways learned failed")
            return
        for name in list(self.learned):
            if name not in gateways:
                del self.learned[name]
                self.seq += 1
                self._moved(None)
        for name, learned in macs.items():
            if name not in held and name in gateways:
                self.learn(name, learned)

    def _recorded(self) -> dict[str, Learned]:
        with self.db.read() as s:
            return Repository(s).learned_macs()
