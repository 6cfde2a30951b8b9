"""What a recording compares and announces (reconcile/announce.py, recorder.py): only the attachments
a batch can move (those made between a gateway's old and new realized generation, those of the
networks an intent change named), everything at a gateway whose record moved otherwise (an error, a
binding error, another writer's record in between), and every status right whichever way it went."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from silonet.reconcile import announce
from silonet.reconcile.announce import Moved, covers
from silonet.reconcile.recorder import Recheck, Recorder
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.signals import RealizationBoard
from silonet.store.repo import Observation, Realization, Repository
from silonet.store.tables import AttachmentRow, AttachmentStatusRow, EventRow, NetworkRow

pytestmark = pytest.mark.both_engines
GATEWAYS = ("gw-a", "gw-b")


def record(name: str, realized: int, reachable: bool = True, error: str | None = None) -> Realization:
    return Realization(name, realized, realized, error, None, reachable)


def test_only_a_move_of_the_realized_generation_is_covered_by_its_span() -> None:
    span = Moved(since=4, upto=6)
    assert covers(span, record("g", 4), record("g", 6)) and covers(span, record("g", 5), record("g", 5))
    assert not covers(span, record("g", 3), record("g", 6))  # moved from before the span
    assert not covers(Moved(vnis=frozenset({7})), record("g", 4), record("g", 5))
    assert not covers(span, record("g", 4), record("g", 5, reachable=False, error="refused"))
    assert not covers(span, record("g", 4), record("g", 5, error="transaction failed"))
    assert not covers(span, None, record("g", 5)) and covers(None, record("g", 1), record("g", 9, reachable=False))
    assert Moved(frozenset({1}), 2, 3) | Moved(frozenset({2})) == Moved(frozenset({1, 2}), 2, 3)
    assert Moved(since=2, upto=3) | Moved(since=5, upto=9) == Moved(since=2, upto=9)  # the hull


@dataclass
class Watching:
    """The recorder's ``watch`` (as the reconciler's, from the intent cache), remembering each ask."""

    manager: Manager
    asked: list[tuple[dict, list[announce.Watched]]] = field(default_factory=list)

    def __call__(self, scope: announce.Scope) -> list[announce.Watched]:
        cache = self.manager.cache
        with cache.lock, self.manager.db.read() as s:
            inv, _generation = cache.current(s)
            out = announce.watched(inv, scope)
        self.asked.append((dict(scope), out))
        return out


@pytest.fixture
def fabric(manager: Manager) -> Iterator[tuple[Manager, Recorder, Watching]]:
    """Two gateways in one group, ten networks attached there, every attachment announced realized."""
    for i, name in enumerate(GATEWAYS, start=1):
        manager.create_gateway(S.GatewayIn.model_validate({
            "name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}], "management": {"driver": "memory"}}))
    manager.create_group(S.GroupIn.model_validate({
        "name": "g", "members": [{"gateway": g, "port": "p1"} for g in GATEWAYS]}))
    for n in range(10):
        attach(manager, n)
    watch = Watching(manager)
    recorder = Recorder(manager.db, RealizationBoard(), lambda _g: True, watch)
    realize(manager, recorder)
    assert statuses(manager) == {f"n{n}": "realized" for n in range(10)}
    watch.asked.clear()
    yield manager, recorder, watch


def attach(manager: Manager, n: int) -> int:
    manager.create_network(S.NetworkIn.model_validate({"name": f"n{n}", "tenant": "t", "vni": 5000 + n}))
    return manager.attach(f"n{n}", S.AttachmentIn.model_validate({"interface_group": "g", "vlan": 100 + n})).generation


def realize(manager: Manager, recorder: Recorder, gateways: tuple[str, ...] = GATEWAYS) -> int:
    generation = manager.cache.generation
    recorder._record_many([(g, Observation(reachable=True, realized_generation=generation, error=None))
                           for g in gateways])
    return generation


def statuses(manager: Manager) -> dict[str, str]:
    q = (select(NetworkRow.name, AttachmentStatusRow.status)
         .join(AttachmentRow, AttachmentRow.network_id == NetworkRow.id)
         .join(AttachmentStatusRow, AttachmentStatusRow.attachment_id == AttachmentRow.id))
    with manager.db.read() as s:
        return dict(s.execute(q).all())


def announced(manager: Manager, after: int = 0) -> list[tuple[str, str]]:
    with manager.db.read() as s:
        rows = s.execute(select(EventRow.data).where(EventRow.type == "attachment", EventRow.id > after)
                         .order_by(EventRow.id)).scalars()
        return [(d["network"], d["status"]) for d in rows]


def last_event(manager: Manager) -> int:
    with manager.db.read() as s:
        return s.execute(select(EventRow.id).order_by(EventRow.id.desc()).limit(1)).scalar_one()


def test_a_pass_compares_only_the_attachments_made_since_the_last_one(fabric) -> None:  # type: ignore[no-untyped-def]
    manager, recorder, watch = fabric
    before = last_event(manager)
    attach(manager, 10)
    realize(manager, recorder)
    assert [[w.network for w in out] for _scope, out in watch.asked] == [["n10"]]  # not the ten before it
    assert announced(manager, before) == [("n10", "realized")]
    assert statuses(manager) == {f"n{n}": "realized" for n in range(11)}


def test_an_intent_change_compares_the_networks_of_its_vnis(fabric) -> None:  # type: ignore[no-untyped-def]
    _manager, recorder, watch = fabric
    recorder._record_many([("gw-a", Recheck(frozenset({5003})))])
    assert [[w.network for w in out] for _scope, out in watch.asked] == [["n3"]]
    recorder._record_many([("gw-a", Recheck(None))])  # anything may have changed: everything there
    assert sorted(w.network for w in watch.asked[-1][1]) == [f"n{n}" for n in range(10)]


def test_another_writers_record_in_between_is_compared_in_full(fabric) -> None:  # type: ignore[no-untyped-def]
    """Another replica recorded gw-b down (and announced it); this one's last word on gw-b is older.
    Its next pass moves gw-b back up: every attachment there is compared again, not only the new one."""
    manager, recorder, watch = fabric
    other = Recorder(manager.db, RealizationBoard(), lambda _g: True, watch)
    other._record_many([("gw-b", Observation(reachable=False, realized_generation=None, error="refused"))])
    assert set(statuses(manager).values()) == {"failed"}
    watch.asked.clear()
    attach(manager, 10)
    realize(manager, recorder)
    assert [scope["gw-b"] for scope, _out in watch.asked] == [Moved(since=watch.asked[0][0]["gw-b"].since,
                                                                    upto=manager.cache.generation), None]
    assert statuses(manager) == {f"n{n}": "realized" for n in range(11)}


def test_a_failed_recording_is_owed_a_full_comparison(fabric, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    manager, recorder, watch = fabric
    real = announce.announce

    def busy(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is locked")

    monkeypatch.setattr(announce, "announce", busy)
    with pytest.raises(RuntimeError):
        recorder._record_many([("gw-a", Recheck(frozenset({5003})))])
    monkeypatch.setattr(announce, "announce", real)
    attach(manager, 10)
    realize(manager, recorder, ("gw-a",))
    scope, out = watch.asked[-1]
    assert scope["gw-a"] is None and len(out) == 11
    attach(manager, 11)
    realize(manager, recorder, ("gw-a",))  # paid: the next pass is proportional again
    scope, out = watch.asked[-1]
    assert isinstance(scope["gw-a"], Moved) and [w.network for w in out] == ["n11"]


def test_a_span_looks_only_at_the_networks_its_writes_named(fabric) -> None:  # type: ignore[no-untyped-def]
    manager, _recorder, _watch = fabric
    generation = attach(manager, 10)
    span = {"gw-a": Moved(since=generation - 1, upto=generation)}
    with manager.cache.lock:
        inv = manager.cache.inventory
        assert [w.network for w in announce.watched(inv, span, lambda _s, _u: frozenset({5010}))] == ["n10"]
        assert announce.watched(inv, span, lambda _s, _u: frozenset({5003})) == []  # n10 was not named
        assert [w.network for w in announce.watched(inv, span, lambda _s, _u: None)] == ["n10"]  # unknown: all


def test_the_reconciler_names_a_span_only_when_it_heard_of_every_write(manager: Manager) -> None:
    from silonet.reconcile import Reconciler
    from silonet.signals import IntentChanged

    rec = Reconciler(manager.runtime)
    for generation, vnis in ((4, frozenset({1})), (5, frozenset()), (6, frozenset({2, 3})), (8, None)):
        rec.notify(IntentChanged(generation, frozenset(), vnis))
    assert rec._named(3, 6) == frozenset({1, 2, 3}) and rec._named(5, 5) == frozenset()
    assert rec._named(2, 4) is None  # generation 3: another process's write, or before this one started
    assert rec._named(6, 7) is None and rec._named(7, 8) is None  # unheard of; anything may have changed


def _hold_everything(monkeypatch, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Every batch large, and the hold after a large announcement ``seconds`` long."""
    from silonet.reconcile import recorder as rec_mod

    monkeypatch.setattr(rec_mod, "JUDGE_INSIDE", 0)
    monkeypatch.setattr(rec_mod, "HOLD_FACTOR", 1e9)
    monkeypatch.setattr(rec_mod, "HOLD_MAX_S", seconds)


DOWN = Observation(reachable=False, realized_generation=None, error="refused")


def _up(manager: Manager) -> Observation:
    return Observation(reachable=True, realized_generation=manager.cache.generation, error=None)


def test_whole_gateways_moved_back_to_back_are_held_and_announced_together(fabric, monkeypatch
                                                                          ) -> None:  # type: ignore[no-untyped-def]
    """After a large announcement, a batch that moves everything at a gateway (a converge's first
    records) is recorded at once (what ``?wait`` reads) and announced later, in one announcement with
    the others held meanwhile, by the recorder's own timer; every status comes out right."""
    import asyncio

    manager, recorder, watch = fabric
    _hold_everything(monkeypatch, 0.5)

    async def run() -> None:
        await recorder.submit("gw-b", DOWN)  # nothing held before: announced at once
        assert set(statuses(manager).values()) == {"failed"}
        before, asked = last_event(manager), len(watch.asked)
        await recorder.submit("gw-b", _up(manager))
        await recorder.submit("gw-a", DOWN)
        with manager.db.read() as s:  # recorded at once, announced not yet, and not even looked at
            real = Repository(s).realizations(GATEWAYS)
        assert real["gw-b"].reachable is True and real["gw-a"].reachable is False
        assert announced(manager, before) == [] and len(watch.asked) == asked
        assert recorder._deferred == {"gw-b": None, "gw-a": None}
        for _ in range(200):  # the hold is 0.5 s: the writer's own timer lets it go, no batch comes
            if recorder._writer is None or recorder._writer.done():
                break
            await asyncio.sleep(0.05)
        assert recorder._deferred == {} and [scope for scope, _out in watch.asked[asked:]] == [
            {"gw-b": None, "gw-a": None}]
        assert statuses(manager) == {f"n{n}": "failed" for n in range(10)}  # gw-a is down now
        await recorder.submit("gw-a", _up(manager))  # held again (that announcement was large too)
        await recorder.drain(grace=30)
        assert statuses(manager) == {f"n{n}": "realized" for n in range(10)}

    asyncio.run(run())


def test_a_proportional_batch_takes_what_was_held_along(fabric, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An intent change's batch (its VNIs, not everything at a gateway) is never held; when it is
    large, what was held goes with it."""
    import asyncio

    manager, recorder, watch = fabric
    _hold_everything(monkeypatch, 3600.0)

    async def run() -> None:
        await recorder.submit("gw-b", DOWN)
        await recorder.submit("gw-b", _up(manager))
        assert set(statuses(manager).values()) == {"failed"} and recorder._deferred == {"gw-b": None}
        await recorder.submit("gw-a", Recheck(frozenset({5003})))
        assert recorder._deferred == {} and watch.asked[-1][0] == {"gw-a": Moved(frozenset({5003})), "gw-b": None}
        assert statuses(manager) == {f"n{n}": "realized" for n in range(10)}

    asyncio.run(run())


def test_a_held_announcement_goes_when_the_recorder_drains(fabric, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    manager, recorder, _watch = fabric
    _hold_everything(monkeypatch, 3600.0)  # only the drain lets it go

    async def run() -> None:
        await recorder.submit("gw-b", DOWN)
        await recorder.submit("gw-b", _up(manager))
        assert set(statuses(manager).values()) == {"failed"} and recorder._deferred
        await recorder.drain(grace=30)
        assert recorder._deferred == {} and recorder._writer is not None and recorder._writer.done()
        assert statuses(manager) == {f"n{n}": "realized" for n in range(10)}

    asyncio.run(run())


def test_an_intent_changes_part_of_a_batch_is_announced_while_a_whole_gateway_is_held(fabric, monkeypatch
                                                                                     ) -> None:  # type: ignore[no-untyped-def]
    """A batch holding an attach's recheck (its VNIs) and a gateway whose record moved everything there:
    the gateway's part is held, the recheck's announced at once."""
    from silonet.reconcile import recorder as rec_mod

    manager, recorder, watch = fabric
    _hold_everything(monkeypatch, 3600.0)
    recorder._record_many([("gw-b", DOWN)], True)  # large: announced, and the hold starts
    monkeypatch.setattr(rec_mod, "JUDGE_INSIDE", 2000)  # the recheck's part is small
    recorder._record_many([("gw-a", Recheck(frozenset({5003}))), ("gw-b", _up(manager))], True)
    assert recorder._deferred == {"gw-b": None}
    assert watch.asked[-1][0] == {"gw-a": Moved(frozenset({5003}))}
