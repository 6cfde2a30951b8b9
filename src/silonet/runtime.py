"""The wiring of one process: what its use cases (``Manager``) and its reconciler share.

Whoever starts the program (``silonet serve``, the CLI's local store, a bench, a test) builds one
``Runtime`` from its database and hands it to the Manager and to the Reconciler: the intent held
in memory, the bus its writes are told on, and the board waiters listen to
(docs/architecture.md, "Signals"). A Manager and a Reconciler of one process given two runtimes
would not hear each other: the reconciler would find writes only by polling, waiters would see
its recordings only through the database.
"""

from __future__ import annotations

from silonet.service.policy import DriverPolicy
from silonet.signals import EventFeed, IntentBus, RealizationBoard
from silonet.store.cache import IntentCache
from silonet.store.db import Database


class Runtime:
    """One database's shared parts in this process."""

    def __init__(self, db: Database, policy: DriverPolicy | None = None, board: RealizationBoard | None = None,
                 feed: EventFeed | None = None) -> None:
        """``board``, ``feed``: a reconcile child's relay them to its front (``silonet.workers``)."""
        self.db = db
        self.policy = policy if policy is not None else DriverPolicy()  # the device layer's word on a gateway
        self.changes = IntentBus()  # intent writes -> the reconciler
        self.board = board if board is not None else RealizationBoard()  # the reconciler's recordings -> waiters
        self.feed = feed if feed is not None else EventFeed()  # events committed here -> the event stream, webhooks
        self.changes.subscribe(lambda _change: self.feed.published())  # an intent write's events
        self.intent = IntentCache(self.policy, self.changes)
