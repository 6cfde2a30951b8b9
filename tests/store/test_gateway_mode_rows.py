"""Where a gateway's mode, pinned host key and pending operations are stored (migration 0008):
written and read back, and what each kind of pass records about what an enforce pass would do."""

from __future__ import annotations

from silonet.model import Gateway, Management, Port
from silonet.service import Manager
from silonet.store.repo import Observation, Repository

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl switch"


def test_mode_and_host_key_round_trip(manager: Manager) -> None:
    gw = Gateway("gw-s", "198.18.0.7", Management("ssh", "admin@198.18.1.7", "eos", host_key=KEY),
                 ports=(Port("p1"),), mode="maintenance")
    plain = Gateway("gw-o", "198.18.0.8", Management("ovsdb", "tcp:198.18.1.8:6640"))
    with manager.db.write() as (s, _generation):
        Repository(s).save_gateway(gw)
        Repository(s).save_gateway(plain)
    with manager.db.read() as s:
        inv = Repository(s).load_inventory()
        real = Repository(s).realizations()
    assert inv.gateways["gw-s"] == gw and inv.gateways["gw-o"] == plain  # defaults: enforce, no host key
    assert (real["gw-s"].mode, real["gw-s"].state, real["gw-s"].pending_operations) == ("maintenance", "held", None)
    assert (real["gw-o"].mode, real["gw-o"].state) == ("enforce", "realized")


def _record(m: Manager, gateway: str, obs: Observation) -> None:
    with m.db.status_session() as s:
        Repository(s).record(gateway, obs)
        s.commit()


def _real(m: Manager, gateway: str):  # type: ignore[no-untyped-def]
    with m.db.read() as s:
        return Repository(s).realizations([gateway])[gateway]


def test_what_each_pass_records_of_the_pending_operations(seeded: Manager) -> None:
    gw = sorted(seeded.inventory().gateways)[0]
    _record(seeded, gw, Observation(reachable=True, realized_generation=None, error=None, drift=4,
                                    pending_operations=4, binding_errors={"p1/5": "foreign"}, held=True))
    r = _real(seeded, gw)
    assert (r.pending_operations, r.drift, r.reachable, r.last_error) == (4, 4, True, None)
    _record(seeded, gw, Observation(reachable=False, realized_generation=None, error="down"))  # unreachable
    assert _real(seeded, gw).pending_operations == 4  # what it showed last stays
    _record(seeded, gw, Observation(reachable=None, realized_generation=None, error=None, held=True))  # maintenance
    r = _real(seeded, gw)
    assert (r.pending_operations, r.reachable, r.last_error, r.binding_errors) == (None, None, None, None)
    _record(seeded, gw, Observation(reachable=True, realized_generation=9, error=None, drift=0, pending_operations=0))
    assert _real(seeded, gw).pending_operations == 0
