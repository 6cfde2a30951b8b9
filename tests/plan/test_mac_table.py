"""``MacTable``: remote MACs held per VNI must answer as the flat ``{(VNI, MAC): IP}`` dict would,
and a scoped pass must read only the VNIs it scopes (its cost is theirs, not the table's)."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from silonet.drivers.vtep_schema import LS_TABLE, OWNER_KEY, UCAST_REMOTE, Interpretation
from silonet.plan.standing import scope
from silonet.plan.state import GatewayState, MacTable, scoped_macs

macs = st.sampled_from([f"02:00:00:00:00:{i:02x}" for i in range(6)])
parts = st.dictionaries(st.integers(1, 6), st.dictionaries(macs, st.sampled_from(["198.18.0.1", "198.18.0.2"]),
                                                            max_size=4), max_size=5)


def flat(p: dict[int, dict[str, str]]) -> dict[tuple[int, str], str]:
    return {(vni, mac): ip for vni, part in p.items() for mac, ip in part.items()}


@given(parts, parts, st.tuples(st.integers(0, 7), macs), st.sets(st.integers(0, 7)))
def test_it_answers_as_the_flat_dict(a: dict, b: dict, key: tuple[int, str], vnis: set[int]) -> None:
    ta, tb, fa, fb = MacTable(a), MacTable(b), flat(a), flat(b)
    assert dict(ta.items()) == fa and list(ta) == list(fa) and set(ta.keys()) == set(fa)
    assert len(ta) == len(fa) and bool(ta) == bool(fa) and sorted(ta.values()) == sorted(fa.values())
    assert (key in ta) == (key in fa) and ta.get(key) == fa.get(key)
    assert (ta == tb) == (fa == fb) and (ta == fb) == (fa == fb) and (fb == ta) == (fa == fb)
    assert (ta != tb) == (fa != fb)
    assert dict(ta.items() - tb.items()) == dict(fa.items() - fb.items())
    assert scoped_macs(ta, vnis) == scoped_macs(fa, vnis) == {k: ip for k, ip in fa.items() if k[0] in vnis}
    assert pickle.loads(pickle.dumps(ta)) == ta
    assert ta != "not a mapping" and "x" not in ta and ("x",) not in ta


def test_a_part_that_is_empty_is_no_difference() -> None:
    one = {"02:00:00:00:00:01": "198.18.0.1"}
    assert MacTable({1: {}, 2: one}) == MacTable({2: dict(one)})
    assert MacTable({1: {}}) == {} and not MacTable({1: {}})


class Whole(dict):
    """A table's parts that refuse to be walked: only the scoped VNIs may be looked up."""

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the whole table was walked")

    __iter__ = values = keys = items  # type: ignore[assignment]


def test_a_scoped_read_looks_only_at_its_vnis() -> None:
    parts = Whole({vni: {f"02:00:00:00:{vni:02x}:{i:02x}": "198.18.0.9" for i in range(50)} for vni in range(100)})
    state = GatewayState({}, {}, MacTable(parts))
    got = scope(state, {3, 7, 500}, set()).remote_macs
    assert len(got) == 100 and {vni for vni, _mac in got} == {3, 7}


def test_a_read_shares_every_vni_part_that_did_not_change() -> None:
    """A read after one VNI's MACs changed copies that VNI's MACs, not the device's: the other
    parts are the very objects of the read before, and the two reads compare part by part."""
    it = Interpretation()
    for vni in range(5000, 5010):
        it.row(LS_TABLE, f"s{vni}", None, (f"s{vni}", (f"n{vni}", vni, {OWNER_KEY: "true"})))
        for i in range(20):
            it.row(UCAST_REMOTE, (vni, i), None, (f"02:00:00:00:{vni % 256:02x}:{i:02x}", f"s{vni}", "198.18.0.5"))
    before = it.state()[0].remote_macs
    it.row(UCAST_REMOTE, "new", None, ("02:aa:00:00:00:01", "s5003", "198.18.0.6"))
    after = it.state()[0].remote_macs
    assert isinstance(before, MacTable) and isinstance(after, MacTable)
    assert len(before) == 200 and len(after) == 201 and before != after
    assert all(after.on(v) is before.on(v) for v in range(5000, 5010) if v != 5003)
    assert after.on(5003) is not before.on(5003) and (5003, "02:aa:00:00:00:01") not in before
    it.row(UCAST_REMOTE, "new", ("02:aa:00:00:00:01", "s5003", "198.18.0.6"), None)
    assert it.state()[0].remote_macs == before
