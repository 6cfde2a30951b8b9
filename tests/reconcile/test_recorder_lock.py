"""The recorder and the database's write lock (reconcile/recorder.py, announce.py): the lease rounds share
it on SQLite (store/leases.py), so no recording holds it long. The status rule (a second of CPU for a
thousand attachments of a hundred gateways each) runs with the lock free; records and announcements go
in transactions of a bounded size, each after any lease round of this process that waits its turn;
and statuses judged on records another writer moved meanwhile are judged again."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from silonet.reconcile import announce, recorder
from silonet.reconcile import rule as reconcile_rule
from silonet.reconcile.recorder import Recorder
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.signals import RealizationBoard
from silonet.store.db import Database
from silonet.store.repo import Observation
from silonet.store.tables import AttachmentRow, AttachmentStatusRow, EventRow, GroupRow, NetworkRow

pytestmark = pytest.mark.both_engines
GROUPS = {"g0": ("gw-0", "gw-1", "gw-2"), "g1": ("gw-3", "gw-4", "gw-5")}
GATEWAYS = tuple(g for members in GROUPS.values() for g in members)
NETWORKS = 4  # each attached to both groups: every gateway carries every network


def lock_free(db: Database) -> bool:
    """Whether another writer could take the lock a recording holds now: SQLite's write lock, on
    PostgreSQL the event lock (Meta's row, which every intent write takes first)."""
    if db.url.startswith("sqlite"):
        conn = sqlite3.connect(db.url.split("///", 1)[1], timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    with db.engine.connect() as conn:
        try:
            conn.execute(text("SELECT 1 FROM meta WHERE id = 1 FOR UPDATE NOWAIT"))
            return True
        except OperationalError:
            return False
        finally:
            conn.rollback()


def watch_of(manager: Manager) -> recorder.Watch:
    def watch(scope: announce.Scope) -> list[announce.Watched]:  # as the reconciler's
        with manager.cache.lock, manager.db.read() as s:
            inv, _generation = manager.cache.current(s)
            return announce.watched(inv, scope)
    return watch


@pytest.fixture
def fleet(manager: Manager) -> Iterator[tuple[Manager, Recorder]]:
    """Six gateways in two groups, four networks attached to both, every attachment announced realized."""
    for i, name in enumerate(GATEWAYS, start=1):
        manager.create_gateway(S.GatewayIn.model_validate({
            "name": name, "vtep_ip": f"198.18.0.{i}", "ports": [{"name": "p1"}], "management": {"driver": "memory"}}))
    for group, members in GROUPS.items():
        manager.create_group(S.GroupIn.model_validate({"name": group, "members": [
            {"gateway": g, "port": "p1"} for g in members]}))
    for n in range(NETWORKS):
        manager.create_network(S.NetworkIn.model_validate({"name": f"n{n}", "tenant": "t", "vni": 5000 + n}))
        for group in GROUPS:
            manager.attach(f"n{n}", S.AttachmentIn.model_validate({"interface_group": group, "vlan": 100 + n}))
    rec = Recorder(manager.db, RealizationBoard(), lambda _g: True, watch_of(manager))
    rec._record_many([(g, up(manager)) for g in GATEWAYS])
    assert set(statuses(manager).values()) == {"realized"}
    yield manager, rec


def up(manager: Manager) -> Observation:
    return Observation(reachable=True, realized_generation=manager.cache.generation, error=None)


DOWN = Observation(reachable=False, realized_generation=None, error="refused")


def statuses(manager: Manager) -> dict[tuple[str, str], str]:
    """The status last announced of each attachment."""
    q = (select(NetworkRow.name, GroupRow.name, AttachmentStatusRow.status)
         .join(AttachmentRow, AttachmentRow.network_id == NetworkRow.id)
         .join(GroupRow, GroupRow.id == AttachmentRow.group_id)
         .join(AttachmentStatusRow, AttachmentStatusRow.attachment_id == AttachmentRow.id))
    with manager.db.read() as s:
        return {(n, g): st for n, g, st in s.execute(q).all()}


def test_the_status_rule_runs_with_the_write_lock_free(fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Beyond a small recording's (an attach's passes: one transaction), the rule runs before any."""
    manager, rec = fleet
    monkeypatch.setattr(recorder, "JUDGE_INSIDE", 0)
    rule, free = reconcile_rule.summarize, []

    def summarize(*args, **kwargs):  # type: ignore[no-untyped-def]
        free.append(lock_free(manager.db))
        return rule(*args, **kwargs)

    monkeypatch.setattr(reconcile_rule, "summarize", summarize)
    rec._record_many([(g, DOWN) for g in GROUPS["g0"]])
    assert free and all(free)
    assert statuses(manager) == {(f"n{n}", g): "failed" if g == "g0" else "degraded"  # g1's lost their peers
                                 for n in range(NETWORKS) for g in GROUPS}


@contextmanager
def transactions() -> Iterator[list[dict[str, int]]]:
    """Per committed transaction: the rows each kind of statement wrote (executemany counts each)."""
    done: list[dict[str, int]] = []
    now: dict[str, int] = {}

    def before(_conn, _cursor, stmt, params, _context, many) -> None:  # type: ignore[no-untyped-def]
        words = stmt.split()
        if words[0].upper() in ("INSERT", "UPDATE"):
            table = words[2] if words[0].upper() == "INSERT" else words[1]
            now[table] = now.get(table, 0) + (len(params) if many else 1)

    def commit(_conn) -> None:  # type: ignore[no-untyped-def]
        done.append(dict(now))
        now.clear()

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "commit", commit)
    try:
        yield done
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "commit", commit)


def test_a_recording_writes_in_transactions_of_a_bounded_size(fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Six gateways down at once: records two gateways per transaction, announcements of about three
    attachments per transaction (one network's two at least), every attachment announced once."""
    manager, rec = fleet
    monkeypatch.setattr(recorder, "RECORD_CHUNK", 2)
    monkeypatch.setattr(recorder, "ANNOUNCE_CHUNK", 3)
    with manager.db.read() as s:
        last = s.execute(select(EventRow.id).order_by(EventRow.id.desc()).limit(1)).scalar_one()
    waited: list[bool] = []
    let_first = manager.db.turns.let_first
    monkeypatch.setattr(manager.db.turns, "let_first", lambda timeout: waited.append(True) or let_first(timeout))
    with transactions() as done:
        rec._record_many([(g, DOWN) for g in GATEWAYS])
    records = [t["gateway_status"] for t in done if t.get("gateway_status") and "events" not in t]
    assert records == [2, 2, 2]
    announced = [t.get("attachment_status", 0) for t in done if "events" in t]
    assert len(announced) == 4 and max(announced) == 2  # a network's two attachments per transaction
    assert len(waited) == len(done) == 7  # each after any lease round waiting its turn
    assert set(statuses(manager).values()) == {"failed"}
    with manager.db.read() as s:
        events = s.execute(select(EventRow.type, EventRow.data).where(EventRow.id > last)).all()
    assert sorted(d["gateway"] for t, d in events if t == "gateway") == sorted(GATEWAYS)
    assert sorted((d["network"], d["interface_group"]) for t, d in events if t == "attachment") == sorted(
        (f"n{n}", g) for n in range(NETWORKS) for g in GROUPS)


def test_a_small_recording_is_one_transaction(fleet) -> None:  # type: ignore[no-untyped-def]
    """One gateway's pass that fails (eight attachments on six gateways to compare): recorded and
    announced in one transaction, as an attach's passes are (the fewest round trips)."""
    _manager, rec = fleet
    with transactions() as done:
        rec._record_many([("gw-0", DOWN)])
    assert len(done) == 1 and done[0]["gateway_status"] == 2  # the record, and its condition
    assert done[0]["events"] == 1 + 2 * NETWORKS  # gw-0 unreachable; every attachment degraded


def test_statuses_judged_on_records_another_writer_moved_are_judged_again(fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Between the judging and the transaction another replica records g1's gateways down: what is
    announced is judged on the records as the transaction finds them."""
    manager, rec = fleet
    monkeypatch.setattr(recorder, "JUDGE_INSIDE", 0)
    other = Recorder(manager.db, RealizationBoard(), lambda _g: True)  # announces nothing
    judge, judged = announce.judge, []

    def racing(real, watch):  # type: ignore[no-untyped-def]
        judged.append(sorted(g for g, r in real.items() if r.reachable is False))
        out = judge(real, watch)
        if len(judged) == 1:
            other._record_many([(g, DOWN) for g in GROUPS["g1"]])
        return out

    monkeypatch.setattr(announce, "judge", racing)
    rec._record_many([("gw-0", DOWN)])
    assert judged == [["gw-0"], ["gw-0", *GROUPS["g1"]]]
    assert set(statuses(manager).values()) == {"failed"}  # g1 down everywhere: not "degraded" by gw-0 alone


def test_rechecks_wait_for_a_pass_under_way_and_go_with_its_record(fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An intent change's rechecks at a gateway whose pass is under way here wait for that pass's
    observation, past RECHECK_WAIT_S (a 4,094-network apply's passes take seconds), and both go in
    one recording: the attachments are judged once, not once for the rechecks and again for the
    record. At a gateway with no pass under way the rechecks go alone after RECHECK_WAIT_S."""
    manager, rec = fleet
    batches: list[list[str]] = []
    record_many = rec._record_many

    def counted(batch, defer=False):  # type: ignore[no-untyped-def]
        batches.append([type(o).__name__ for _g, o in batch])
        return record_many(batch, defer)

    monkeypatch.setattr(rec, "_record_many", counted)

    async def scenario() -> None:
        rec.passing("gw-0", True)
        rechecked = asyncio.ensure_future(rec.recheck(["gw-0"]))
        await asyncio.sleep(recorder.RECHECK_WAIT_S * 6)
        assert not rechecked.done() and batches == [], "the rechecks waited for the pass under way"
        await rec.submit("gw-0", up(manager))
        rec.passing("gw-0", False)
        await rechecked
        await rec.recheck(["gw-1"])  # no pass under way there: alone, once RECHECK_WAIT_S passed

    asyncio.run(scenario())
    assert batches == [["Recheck", "Observation"], ["Recheck"]], batches
