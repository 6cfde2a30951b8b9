"""A gateway's recorded actual state, through its codec (plan/actual_json.py): the repository's
read of the learned MACs (their own table), and the manager's status and plan, read what the reconciler
writes; a gateway forgotten without cleaning tells what it held."""

from __future__ import annotations

from silonet.plan import GatewayState, LogicalSwitch
from silonet.plan import actual_json as J
from silonet.service import Manager
from silonet.store.repo import ActualSnapshot, Repository


def _record(m: Manager, gateway: str, data: dict) -> None:
    with m.db.status_session() as s:
        Repository(s).record(gateway, ActualSnapshot(data))
        s.commit()


def test_readers_get_back_what_the_reconciler_records(seeded: Manager) -> None:
    gw, other = sorted(seeded.inventory().gateways)[:2]
    owned = GatewayState({5000: LogicalSwitch(5000, "stale", frozenset({"198.18.0.9"}))},
                         {("nowhere", 7): 5000}, {(5000, "02:00:00:00:00:09"): "198.18.0.9"})
    learned = {5000: frozenset({"02:00:00:00:00:01"}), 77: frozenset()}
    _record(seeded, gw, J.encode(owned, learned))
    with seeded.db.read() as s:
        macs = Repository(s).learned_macs()
    assert macs[gw] == learned and other not in macs  # never read: nothing learned, not listed

    status = seeded.gateway_status(gw)
    assert status.actual == owned.to_dict()
    assert any("nowhere" in op["description"] for op in status.repair or [])  # the stale binding goes
    plan = {g.gateway: g for g in seeded.plan().gateways}
    assert plan[gw].actual_known and not plan[other].actual_known
