"""The stored intent, held in memory at one generation.

Loading the intent costs O(fleet) (200,000 attachments: seconds); a change costs O(change).
Every write bumps ``meta.generation`` first (the write lock), so "the cached inventory is at
generation G and the database is at G" means nothing changed in between, whoever writes
(this process, another replica, the CLI on the same SQLite file). A writer holding the
lock changes the cached inventory in place; if its transaction fails after the model
changed, the cache is dropped and the next user reloads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from silonet.logs import REQUEST_ID
from silonet.model import Inventory
from silonet.model.inventory import DevicePolicy
from silonet.signals import IntentChanged
from silonet.store.repo import Audited, Bumped, Repository

if TYPE_CHECKING:
    from silonet.signals import IntentBus
    from silonet.store.db import Database

audit_log = logging.getLogger("silonet.service.audit")  # one line per committed write (who, what: no values)
log = logging.getLogger("silonet.store")


@dataclass
class Write:
    """One intent write in progress (``IntentCache.transaction``): the session, the intent to
    change in place, the new generation, and the notes the writer hands it (``note``: what
    ``Repository.bump`` and ``Repository.audit`` return), told once the write committed."""

    session: Session
    inventory: Inventory
    generation: int
    gateways: set[str] = field(default_factory=set)
    vnis: set[int] | None = field(default_factory=set)  # None: anything may have changed
    audited: list[str] = field(default_factory=list)

    def note(self, *notes: Bumped | Audited | None) -> None:
        for n in notes:
            if isinstance(n, Bumped):
                if n.gateways:
                    self.gateways |= n.gateways
                    if n.vnis is None or self.vnis is None:
                        self.vnis = None
                    else:
                        self.vnis |= n.vnis
            elif isinstance(n, Audited):
                self.audited.append(n.line)

    def change(self, journal: list | None = None) -> IntentChanged:
        """What the write changed, as the reconciler hears it (the writer's request id: the cause)."""
        return IntentChanged(self.generation, frozenset(self.gateways),
                             None if self.vnis is None else frozenset(self.vnis), REQUEST_ID.get(),
                             None if journal is None else tuple(journal))


class IntentCache:
    """One inventory per process, shared by the API's use cases and the reconciler (the wiring,
    ``silonet.runtime``, builds it with the device layer's ``policy`` and the bus its writes are
    told on).

    ``lock`` guards the inventory: readers hold it while they look (compile, render),
    writers for their whole transaction, so nobody sees a half-made change.
    """

    def __init__(self, policy: DevicePolicy | None = None, changes: IntentBus | None = None) -> None:
        self.lock = threading.RLock()
        self.policy = policy
        self.changes = changes
        self.inventory: Inventory | None = None
        self.generation = -1
        self.loads = 0  # how often the whole intent was read from the database
        self._writer: int | None = None  # the thread whose write holds ``lock`` (``_writing``)
        self._after: list[Callable[[], None]] = []  # what runs once that write lets go of it

    def after_release(self, callback: Callable[[], None]) -> None:
        """``callback`` once the write this thread is making let go of ``lock`` (at once outside a
        write): a listener of the write's change (told under ``lock``) that wakes whoever reads the
        intent wakes them then. Woken under it, the ten passes of a ten-gateway attach found the
        lock held and each compiled in a thread of its own, contending for it and the interpreter."""
        if self._writer == threading.get_ident():
            self._after.append(callback)
        else:
            callback()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """``lock`` for a write (``transaction``, ``replay``); ``after_release``'s callbacks run once
        the outermost write of this thread let go of it."""
        me = threading.get_ident()
        after: list[Callable[[], None]] = []
        try:
            with self.lock:
                if self._writer == me:  # inside another write of this thread: that one lets go
                    yield
                    return
                self._writer, self._after = me, after
                try:
                    yield
                finally:
                    self._writer, self._after = None, []
        finally:
            for callback in after:
                callback()

    def invalidate(self) -> None:
        with self.lock:
            self.inventory, self.generation = None, -1

    def _load(self, repo: Repository, generation: int) -> Inventory:
        inv = repo.load_inventory(self.policy)
        self.inventory, self.generation = inv, generation
        self.loads += 1
        return inv

    def current(self, session: Session) -> tuple[Inventory, int]:
        """The intent at the database's generation (call with ``lock`` held)."""
        repo = Repository(session)
        generation = repo.generation()
        if self.inventory is None or self.generation != generation:
            return self._load(repo, generation), generation
        return self.inventory, generation

    @contextmanager
    def transaction(self, db: Database) -> Iterator[Write]:
        """One write (``Write``: the session, the intent to change in place, the new generation).

        Commits when the block ends; if anything fails after the model changed (a later
        check, the database), the cache is dropped, so nobody sees a change that did not commit.
        Once committed, in the writer's thread and still under ``lock``, the audit lines are
        logged and one ``IntentChanged`` is published: a listener that notes it there is done
        before anyone compiles the new generation (reconcile/intent.py relies on it).
        """
        with self._writing():
            inv: Inventory | None = None
            journal: list | None = None
            before = 0
            try:
                with db.write() as (session, generation):
                    if self.inventory is None or self.generation != generation - 1:
                        # someone else wrote since (or nothing cached): read it inside this transaction
                        self._load(Repository(session), generation - 1)
                    inv = self.inventory
                    assert inv is not None
                    before = inv.changes
                    inv.journal = []  # what this write changes, as made: for ``replay`` elsewhere
                    write = Write(session, inv, generation)
                    yield write
            except BaseException:
                if inv is not None and inv.changes != before:
                    self.invalidate()
                raise
            finally:
                if inv is not None:
                    journal, inv.journal = inv.journal, None
            for line in write.audited:
                audit_log.info("generation %d: %s; %d gateway(s) to reconcile", generation, line,
                               len(write.gateways))
            if self.changes is not None:
                self.changes.publish(write.change(journal))
            self.generation = generation

    def replay(self, change: IntentChanged) -> bool:
        """Another process's intent write (``change.journal``), made on the inventory held here when
        it stands at the generation before: then told on this process's bus as a write of its own
        is. Otherwise (nothing held, a write in between) the inventory is dropped and the next user
        reloads it; the change is told all the same. Returns whether it was replayed."""
        with self._writing():
            inv = self.inventory
            replayed = False
            if inv is not None and change.journal is not None and self.generation == change.generation - 1:
                try:
                    inv.replay(change.journal)
                    self.generation, replayed = change.generation, True
                except Exception:  # not the same intent after all: the database's word
                    log.exception("replaying intent generation %d failed; reloading", change.generation)
            if not replayed and self.generation < change.generation:
                self.invalidate()
            if self.changes is not None:
                self.changes.publish(change)
            return replayed
