"""``CompactSet`` (plan/intern.py), the flood lists' form: whatever a frozenset of the same members
answers, it answers (equality both ways, hash, membership, order-free comparison, the set
operators), so a state holding one and a state holding a frozenset compare, hash and diff alike;
``shared_set`` hands out one object per content."""

from __future__ import annotations

import gc
import pickle
import sys

from hypothesis import given
from hypothesis import strategies as st

from silonet.plan import GatewayState, LogicalSwitch, diff
from silonet.plan.intern import CompactSet, shared_set

ips = st.frozensets(st.sampled_from([f"198.18.{i // 50}.{i % 50 + 1}" for i in range(120)]), max_size=40)
probes = st.one_of(st.sampled_from(["198.18.0.1", "198.18.1.7", "", "zz"]), st.integers(), st.none())


@given(ips, ips, probes)
def test_it_answers_as_the_frozenset_of_its_members(a: frozenset[str], b: frozenset[str], probe: object) -> None:
    ca, cb = CompactSet(a), CompactSet(b)
    assert (ca == a, a == ca, ca != a, a != ca) == (True, True, False, False)
    assert hash(ca) == hash(a) and len(ca) == len(a) and set(ca) == a
    assert list(ca) == sorted(a)  # its order is the members' own: one text per content
    assert (ca == cb) == (a == b) and (ca == b) == (a == b) and (b == ca) == (a == b) and (ca != cb) == (a != b)
    assert (probe in ca) == (probe in a)
    for x in a:
        assert x in ca
    assert (ca <= b, ca < b, ca >= b, ca > b) == (a <= b, a < b, a >= b, a > b)
    assert (a <= cb, a < cb, a >= cb, a > cb) == (a <= b, a < b, a >= b, a > b)
    assert (ca - cb, ca | cb, ca & cb, ca ^ cb) == (a - b, a | b, a & b, a ^ b)
    assert (a - cb, a | cb, a & cb, a ^ cb) == (a - b, a | b, a & b, a ^ b)
    assert frozenset().union(ca, cb) == a | b and ca.isdisjoint(cb) == a.isdisjoint(b)
    assert {ca: 1}.get(a) == 1 and {a: 1}.get(ca) == 1  # one key, whichever form asks
    assert pickle.loads(pickle.dumps(ca)) == a
    assert (ca == sorted(a)) is False and (ca == tuple(sorted(a))) is False  # a sequence is not a set


@given(ips, ips)
def test_states_with_either_form_diff_alike(a: frozenset[str], b: frozenset[str]) -> None:
    """A desired state of shared sets against one read as frozensets (an SSH dialect's): the same plan
    as frozensets on both sides."""
    def state(flood: frozenset[str] | CompactSet) -> GatewayState:
        return GatewayState({5000: LogicalSwitch(5000, "n", flood)}, {("p1", 100): 5000})

    assert diff(state(shared_set(a)), state(b)) == diff(state(a), state(b))
    assert diff(state(a), state(shared_set(b))) == diff(state(a), state(b))
    assert diff(state(shared_set(a)), state(a)) == []


def test_shared_sets_are_one_object_per_content_and_small() -> None:
    peers = [f"198.18.0.{i}" for i in range(1, 100)]
    one = shared_set(peers)
    assert shared_set(reversed(peers)) is one and shared_set(set(peers)) is one
    assert shared_set(peers[1:]) is not one and shared_set(peers[1:]) == frozenset(peers[1:])
    held = sys.getsizeof(one) + sys.getsizeof(one._items)
    assert held < sys.getsizeof(frozenset(set(peers))) / 4  # 0.9 KiB against 4.3 for 99 IPs
    key = hash(one)
    del one
    gc.collect()
    from silonet.plan import intern
    assert key not in intern._SETS  # held weakly: gone with its last holder
