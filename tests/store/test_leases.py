"""Gateway leases (store/leases.py) on each engine: take, renew, share, expire, take over,
give back, and one owner per gateway when replicas race."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from silonet.model import Gateway, Management, Port
from silonet.store.db import Database
from silonet.store.leases import Leases
from silonet.store.repo import Repository

GATEWAYS = [f"gw{i}" for i in range(10)]


def add_gateways(db: Database, names: list[str] = GATEWAYS) -> None:
    with db.write() as (s, _generation):
        repo = Repository(s)
        for i, name in enumerate(names):
            repo.save_gateway(Gateway(name=name, vtep_ip=f"198.18.1.{i + 1}", capacity=64, ports=(Port("p1"),),
                                      management=Management("ovsdb", f"tcp:127.0.0.1:{7000 + i}")))


def test_one_replica_takes_every_gateway_and_renews(db: Database) -> None:
    add_gateways(db)
    a = Leases(db, "a", ttl=30)
    before = time.monotonic()
    r = a.round()
    assert r.held == frozenset(GATEWAYS) and r.replicas == 1 and not r.excess
    assert before + 30 - a.margin <= r.valid_until <= time.monotonic() + 30 - a.margin
    assert a.owners() == dict.fromkeys(GATEWAYS, "a")
    assert a.round().held == frozenset(GATEWAYS)  # renewed, nothing lost
    with db.read() as s:
        assert {n: r.owner for n, r in Repository(s).realizations().items()} == dict.fromkeys(GATEWAYS, "a")


def test_replicas_share_the_gateways(db: Database) -> None:
    """The first replica holds everything; as others appear it gives back beyond its share
    (ceil(10 / live replicas)) and they take what is free: 4/3/3 or 4/4/2, never two owners."""
    add_gateways(db)
    reps = [Leases(db, n, ttl=30) for n in "abc"]
    assert reps[0].round().held == frozenset(GATEWAYS)
    held: dict[str, frozenset[str]] = {}
    for _ in range(3):  # bounded: each round settles a little more
        for rep in reps:
            r = rep.round()
            held[rep.owner] = r.held - r.excess
            rep.release(r.excess)
    assert sorted(len(h) for h in held.values()) in ([2, 4, 4], [3, 3, 4])
    assert set().union(*held.values()) == set(GATEWAYS)
    assert sum(len(h) for h in held.values()) == len(GATEWAYS)  # disjoint
    assert reps[0].owners() == {g: o for o, hs in held.items() for g in hs}


def test_siblings_started_together_take_their_share_from_the_first_round(db: Database) -> None:
    """``serve --workers 3``: the first worker to start does not take all ten gateways (opening ten
    connections to give seven back a round later), only its share of three siblings."""
    add_gateways(db)
    reps = [Leases(db, n, ttl=30, replicas_at_least=3) for n in "abc"]
    first = reps[0].round()
    assert len(first.held) == 4 and not first.excess  # ceil(10 / 3), though alone so far
    held = [first.held] + [rep.round().held for rep in reps[1:]]
    assert sorted(map(len, held)) == [2, 4, 4] and frozenset().union(*held) == frozenset(GATEWAYS)


def test_an_expired_lease_is_taken_over_only_after_its_fence(db: Database) -> None:
    add_gateways(db)
    # a round holds what is still running when it ends (the database's clock): the TTL is well above
    # a round's time on a loaded machine (at 1 s, CI once saw a round that held nothing)
    a, b = Leases(db, "a", ttl=3.0), Leases(db, "b", ttl=3.0)
    ra = a.round()
    assert ra.held == frozenset(GATEWAYS)
    rb = b.round()
    assert rb.held == frozenset() and rb.next_expiry_s is not None and 0 < rb.next_expiry_s <= 3.0
    deadline = time.monotonic() + 15
    while not (rb := b.round()).held and time.monotonic() < deadline:  # "a" died: it renews no more
        time.sleep(0.05)
    taken = time.monotonic()
    assert rb.held  # b took over ...
    assert ra.valid_until < taken  # ... only once "a" stopped writing
    # a's heartbeat, written after its leases, may expire a little later: a round between the two
    # takes b's share of two replicas (5); the next, with "a" gone, everything
    while rb.held != frozenset(GATEWAYS) and time.monotonic() < deadline:
        time.sleep(0.05)
        rb = b.round()
    assert rb.held == frozenset(GATEWAYS)  # one survivor: its share is everything
    assert a.round().held == frozenset()  # "a" comes back: what it had is gone
    assert b.owners() == dict.fromkeys(GATEWAYS, "b")


def test_given_back_leases_are_free_at_once(db: Database) -> None:
    add_gateways(db)
    a, b = Leases(db, "a", ttl=30), Leases(db, "b", ttl=30)
    a.round()
    a.release(["gw0", "gw1"])
    assert b.round(limit=False).held == {"gw0", "gw1"}
    a.release()  # all, and the heartbeat
    assert b.round().held == frozenset(GATEWAYS) and b.round().replicas == 1


def test_racing_replicas_never_share_a_gateway(db: Database) -> None:
    """Four replicas take free leases at the same moment, without the share limit: the
    upsert gives each gateway to exactly one of them."""
    add_gateways(db)
    reps = [Leases(db, f"r{i}", ttl=30) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        rounds = list(pool.map(lambda rep: rep.round(limit=False), reps))
    held = [r.held for r in rounds]
    assert sum(len(h) for h in held) == len(GATEWAYS)
    assert set().union(*held) == set(GATEWAYS)
    assert reps[0].owners() == {g: rep.owner for rep, h in zip(reps, held, strict=True) for g in h}


def test_a_removed_gateway_takes_its_lease_along(db: Database) -> None:
    add_gateways(db)
    a = Leases(db, "a", ttl=30)
    a.round()
    with db.write() as (s, _generation):
        Repository(s).delete_gateway("gw3")
    assert a.round().held == frozenset(GATEWAYS) - {"gw3"}
    assert "gw3" not in a.owners()


def test_a_crashed_replica_of_this_host_is_taken_over_at_once(db: Database) -> None:
    """A process of this host (and pid namespace) that is gone cannot be writing: a restarted
    server takes its leases without waiting out the TTL. One still alive, or of another host,
    keeps them until they expire."""
    import socket
    import subprocess
    import sys

    from silonet.store.leases import _pid_namespace, dead_here, replica_id

    add_gateways(db)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host, ns = socket.gethostname(), _pid_namespace()
    dead = f"{host}-{ns}-{int(gone.stdout)}-abc123"
    alive = f"{host}-{ns}-1-abc123"  # pid 1 is always there
    assert dead_here(dead) and not dead_here(alive) and not dead_here(f"elsewhere-{ns}-{int(gone.stdout)}-abc123")
    assert not dead_here(replica_id()) and not dead_here("custom-name")
    crashed = Leases(db, dead, ttl=30)
    assert crashed.round().held == frozenset(GATEWAYS)
    restarted = Leases(db, replica_id(), ttl=30)
    r = restarted.round()
    assert r.held == frozenset(GATEWAYS) and r.replicas == 1  # at once, and the dead one no longer counts
    other = Leases(db, alive, ttl=30)
    assert other.round().held == frozenset()  # a live owner's leases stay its own


# ------------------------------------------------------------------ the epoch (the device's fence)
def _epochs(db: Database) -> dict[str, int]:
    """Every lease row's epoch, expired ones too (the history a device is fenced by)."""
    from sqlalchemy import select

    from silonet.store.tables import GatewayLeaseRow, GatewayRow

    with db.read() as s:
        return dict(s.execute(select(GatewayRow.name, GatewayLeaseRow.epoch)
                              .join(GatewayLeaseRow, GatewayLeaseRow.gateway_id == GatewayRow.id)).all())


def test_the_epoch_moves_when_a_lease_is_taken_and_stays_while_renewed(db: Database) -> None:
    add_gateways(db, ["gw0", "gw1"])
    a, b = Leases(db, "a", ttl=30), Leases(db, "b", ttl=30)
    assert a.round().epochs == {"gw0": 1, "gw1": 1}  # inserted: the first take
    assert a.round().epochs == {"gw0": 1, "gw1": 1}  # renewed: unchanged
    a.release(["gw1"])
    assert _epochs(db) == {"gw0": 1, "gw1": 1}  # given back: expired, the epoch kept
    assert b.round(limit=False).epochs == {"gw1": 2}
    b.release()
    assert a.round(limit=False).epochs == {"gw0": 1, "gw1": 3}  # back to a: one more again
    assert _epochs(db) == {"gw0": 1, "gw1": 3}


def test_the_epoch_moves_on_takeover_of_an_expired_lease_and_on_retaking_ones_own(db: Database) -> None:
    add_gateways(db, ["gw0"])
    a, b = Leases(db, "a", ttl=2.0), Leases(db, "b", ttl=30)  # TTL: above a round's time on a loaded machine
    assert a.round().epochs == {"gw0": 1}
    time.sleep(2.1)  # a stalled past its lease; nobody took it meanwhile
    assert a.round().epochs == {"gw0": 2}  # taken again, not renewed: its writes of before are fenced
    time.sleep(2.1)
    assert b.round().epochs == {"gw0": 3}  # b takes the expired lease over
    assert a.round().epochs == {}  # a comes back: gone, and b's epoch stands
    assert _epochs(db) == {"gw0": 3}


def test_a_dead_replicas_leases_are_taken_under_a_new_epoch(db: Database) -> None:
    import socket
    import subprocess
    import sys

    from silonet.store.leases import _pid_namespace, replica_id

    add_gateways(db, ["gw0", "gw1"])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = Leases(db, f"{socket.gethostname()}-{_pid_namespace()}-{int(gone.stdout)}-abc123", ttl=30)
    assert dead.round().epochs == {"gw0": 1, "gw1": 1}
    assert Leases(db, replica_id(), ttl=30).round().epochs == {"gw0": 2, "gw1": 2}


def test_adopt_moves_past_the_devices_epoch_only_while_the_lease_is_ones_own(db: Database) -> None:
    """The device holds an epoch from before the lease's history (the gateway deleted and added
    again): its owner moves past it; a replica whose lease moved on cannot."""
    add_gateways(db, ["gw0"])
    a, b = Leases(db, "a", ttl=30), Leases(db, "b", ttl=30)
    assert a.round().epochs == {"gw0": 1}
    assert a.adopt("gw0", 7) == 8
    assert a.round().epochs == {"gw0": 8}  # renewed: the adopted epoch stays
    assert a.adopt("gw0", 3) == 8  # already past it: unchanged
    assert b.adopt("gw0", 20) is None and _epochs(db) == {"gw0": 8}  # not b's lease
    a.release()
    assert a.adopt("gw0", 20) is None and _epochs(db) == {"gw0": 8}  # given back: no longer a's either
    assert b.round().epochs == {"gw0": 9}
