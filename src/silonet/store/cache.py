"""The stored intent, held in memory at one generation.

Loading the intent costs O(fleet) (200,000 attachments: seconds); a change costs O(change).
Every write bumps ``meta.generation`` first (the write lock), so "the cached inventory is at
generation G and the database is at G" means nothing changed in between, whoever writes
(this process, another replica, the CLI on the same SQLite file). A writer holding the
lock changes the cached inventory in place; if its transaction fails after the model
changed, the cache is dropped and the next user reloads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from silonet.model import Inventory
from silonet.model.inventory import DevicePolicy
from silonet.store.repo import Repository

if TYPE_CHECKING:
    from silonet.store.db import Database


class IntentCache:
    """One inventory per database, shared by the API's use cases and the reconciler.

    ``lock`` guards the inventory: readers hold it while they look (compile, render),
    writers for their whole transaction, so nobody sees a half-made change.
    """

    def __init__(self, policy: DevicePolicy | None = None) -> None:
        self.lock = threading.RLock()
        self.policy = policy
        self.inventory: Inventory | None = None
        self.generation = -1
        self.loads = 0  # how often the whole intent was read from the database

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
    def transaction(self, db: Database) -> Iterator[tuple[Session, Inventory, int]]:
        """One write: the session, the intent to change in place, the new generation.

        Commits when the block ends; if anything fails after the model changed (a later
        check, the database), the cache is dropped, so nobody sees a change that did not commit.
        """
        with self.lock:
            inv: Inventory | None = None
            before = 0
            try:
                with db.write() as (session, generation):
                    if self.inventory is None or self.generation != generation - 1:
                        # someone else wrote since (or nothing cached): read it inside this transaction
                        self._load(Repository(session), generation - 1)
                    inv = self.inventory
                    assert inv is not None
                    before = inv.changes
                    yield session, inv, generation
            except BaseException:
                if inv is not None and inv.changes != before:
                    self.invalidate()
                raise
            self.generation = generation
