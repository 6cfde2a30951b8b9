"""What a write costs the reconciler beyond its passes: the passes it wakes are woken once the writer
let go of the intent cache (they compile at once instead of each waiting for it in a thread), and
the supervisor's look after this process's own writes reads no gateway record (another process's
write is read from the database, as before)."""

from __future__ import annotations

import asyncio
import threading

from silonet.config import Settings
from silonet.drivers.memory import FABRIC
from silonet.reconcile import Reconciler
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.signals import IntentBus, IntentChanged
from silonet.store.cache import IntentCache
from silonet.store.db import Database


def _free_elsewhere(cache: IntentCache) -> bool:
    """Whether another thread could take the cache's lock right now."""
    got: list[bool] = []

    def take() -> None:
        ok = cache.lock.acquire(blocking=False)
        if ok:
            cache.lock.release()
        got.append(ok)

    t = threading.Thread(target=take)
    t.start()
    t.join()
    return got[0]


def test_what_a_listener_defers_runs_once_the_writer_let_go(db: Database) -> None:
    bus = IntentBus()
    cache = IntentCache(changes=bus)
    seen: list[tuple[str, bool]] = []
    bus.subscribe(lambda change: seen.append(("told", _free_elsewhere(cache))))
    bus.subscribe(lambda change: cache.after_release(lambda: seen.append(("after", _free_elsewhere(cache)))))
    with cache.transaction(db):
        pass
    assert seen == [("told", False), ("after", True)]
    cache.after_release(lambda: seen.append(("outside a write", True)))  # nobody to wait for: at once
    assert seen[-1] == ("outside a write", True)


def _gateway(manager: Manager, name: str, ip: str) -> None:
    manager.create_gateway(S.GatewayIn.model_validate({
        "name": name, "vtep_ip": ip, "ports": [{"name": "p1"}], "management": {"driver": "memory"}}))


def test_the_supervisor_reads_no_records_after_this_processes_own_writes(manager: Manager) -> None:
    FABRIC.forget()
    other = Manager(Runtime(manager.db), Settings(database_url=manager.db.url))  # another process, in effect
    _gateway(manager, "gw-a", "198.18.0.1")

    async def run() -> list[str]:
        rec = Reconciler(manager.runtime, period=60.0, poll=60.0)
        loads: list[str] = []
        load = rec._load

        def counted():  # type: ignore[no-untyped-def]
            loads.append("load")
            return load()

        rec._load = counted  # type: ignore[method-assign]
        await rec.start()
        try:
            loads.clear()
            for n in range(3):  # this process's writes: told on its bus
                await asyncio.to_thread(manager.create_network, S.NetworkIn.model_validate(
                    {"name": f"n{n}", "tenant": "t", "vni": 7000 + n}))
            await asyncio.to_thread(_gateway, manager, "gw-b", "198.18.0.2")
            await rec._refresh()
            # Four writes, each told on the bus: no read. At most one: the supervisor's own wake
            # may read the database's generation between a write's commit and its message.
            assert len(loads) <= 1 and set(rec.gateways) == {"gw-a", "gw-b"}, loads
            assert rec.desired_at["gw-b"] == rec.generation == manager.cache.generation
            own = len(loads)
            await asyncio.to_thread(other.create_network, S.NetworkIn.model_validate(
                {"name": "x", "tenant": "t", "vni": 7100}))  # not told here: read it
            await rec._refresh()  # the supervisor's own wake may have read it first: once or twice, never none
            assert len(loads) - own in (1, 2) and rec.generation == other.cache.generation
        finally:
            await rec.stop()
        return loads

    try:
        asyncio.run(run())
    finally:
        FABRIC.forget()


def test_a_change_told_before_the_reconciler_started_is_not_held_for_ever(manager: Manager) -> None:
    rec = Reconciler(manager.runtime)
    rec.notify(IntentChanged(5, frozenset(), frozenset()))  # no loop yet: nothing woken, nothing kept
    rec.generation = 7
    assert rec._told_all(7) is None and not rec._told
