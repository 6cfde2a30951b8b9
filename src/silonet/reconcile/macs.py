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

    ``moved(gateway, vnis)``: the MACs ``gateway`` learned on ``vnis`` changed, so the remote MACs
    of the gateways carrying those VNIs may have (None, None: a gateway left; anything may have).
    The reconciler notes that and wakes those workers. A gateway that learned nothing is not
    listed: "nothing yet" and "nothing" are one state, so a fleet's first reads (1,000 gateways
    telling they learned nothing) move nothing, where each used to wake every other worker for a
    whole compile (1,000 x 999 compiles before a single write)."""

    def __init__(self, db: Database, moved: Callable[[str | None, frozenset[int] | None], None]) -> None:
        self.db = db
        self.learned: dict[str, Learned] = {}
        self.seq = 0
        self._moved = moved

    def learn(self, gateway: str, macs: Learned) -> None:
        """MACs a gateway learned (its worker, at each read): when they change, the peers on the
        VNIs that changed need new remote MACs."""
        before = self.learned.get(gateway, {})
        macs = {vni: m for vni, m in macs.items() if m}
        if before == macs:
            return
        if macs:
            self.learned[gateway] = macs
        else:
            del self.learned[gateway]
        self.seq += 1
        self._moved(gateway, frozenset(v for v in before.keys() | macs.keys() if before.get(v) != macs.get(v)))

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
                self._moved(None, None)
        for name in gateways:
            if name not in held and (name in macs or name in self.learned):
                self.learn(name, macs.get(name, {}))

    def _recorded(self) -> dict[str, Learned]:
        with self.db.read() as s:
            return Repository(s).learned_macs()
