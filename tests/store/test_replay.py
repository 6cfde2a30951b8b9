"""Another process's copy of the intent follows the writes by replaying their model calls
(``Inventory.journal`` -> ``IntentChanged.journal`` -> ``IntentCache.replay``: how a reconcile
worker process of ``silonet serve --workers N`` keeps up without reloading the whole intent).

Hypothesis: random intents applied, then another random intent applied over them with --prune
(every kind of change: puts, removals, attaches, detaches, pairs, decommissioning), then single use
cases; a second cache loaded from the same store at the start replays every change, and at the end
holds what a fresh load of the store holds, compiled the same for every gateway.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from silonet.errors import SilonetError
from silonet.model import Inventory
from silonet.plan import Compiler
from silonet.runtime import Runtime
from silonet.service import schemas as S
from silonet.signals import IntentChanged
from silonet.store.cache import IntentCache
from silonet.store.db import Database
from tests.service.test_export_property import Stores, fuzz, intents
from tests.service.test_export_property import template as template


def contents(inv: Inventory) -> tuple:
    compiler = Compiler(inv, None, {})
    return (inv.silos, inv.gateways, inv.groups, inv.networks, inv.attachments, inv.decommissioning,
            inv.quarantined, {name: compiler.gateway(name) for name in sorted(inv.gateways)})


@settings(fuzz(20), phases=[Phase.explicit, Phase.generate])  # a failure's shrinking took minutes: none
@given(first=intents(), second=intents(), prune=st.booleans())
def test_a_copy_replaying_every_write_holds_what_the_store_holds(
        tmp_path_factory: pytest.TempPathFactory, template: Path, first: dict[str, Any], second: dict[str, Any],
        prune: bool) -> None:
    stores = Stores(template, tmp_path_factory.mktemp("replay"))
    try:
        m = stores.new()
        copy = IntentCache(m.runtime.policy)
        with m.db.read() as s, s.begin():
            copy.current(s)
        heard: list[IntentChanged] = []
        m.runtime.changes.subscribe(heard.append)
        m.apply(S.validate(S.Topology, first))
        with contextlib.suppress(SilonetError):  # the second may not follow the first (a port's flag in use): no change
            m.apply(S.validate(S.Topology, second), prune=prune, force=True)
        inv = m.runtime.intent.inventory
        if inv is not None and inv.networks:
            name = sorted(inv.networks)[0]
            for att in list(inv.attachments_of(name))[:2]:
                m.detach(name, att.group, att.vlan)
            m.delete_network(sorted(inv.networks)[-1], cascade=True)
        assert heard and all(c.journal is not None for c in heard)
        for change in heard:
            assert copy.replay(change), f"generation {change.generation} not replayed"
        with m.db.read() as s, s.begin():
            fresh = IntentCache(m.runtime.policy)
            loaded, generation = fresh.current(s)
        assert copy.generation == generation
        assert copy.inventory is not None and contents(copy.inventory) == contents(loaded)
    finally:
        stores.close()


def test_a_gap_drops_the_copy_and_still_tells_the_change(tmp_path: Path) -> None:
    """A write this process did not hear of came in between: reload (the database's word), and the
    reconciler still hears of the change (its VNIs, its gateways)."""
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.upgrade()
    try:
        copy = Runtime(db)
        with db.read() as s, s.begin():
            copy.intent.current(s)
        told: list[IntentChanged] = []
        copy.changes.subscribe(told.append)
        change = IntentChanged(copy.intent.generation + 2, frozenset({"gw"}), None, None, ())
        assert not copy.intent.replay(change)
        assert copy.intent.inventory is None and told == [change]
    finally:
        db.dispose()
