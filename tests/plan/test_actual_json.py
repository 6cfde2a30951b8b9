"""The actual-state JSON (plan/actual_json.py): what the reconciler records is what every reader
gets back, through JSON and its string keys, whatever the device held."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from silonet.plan import GatewayState, LogicalSwitch
from silonet.plan import actual_json as J

VNIS = st.integers(1, 2**24 - 1)
MACS = st.frozensets(st.sampled_from(["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:0a"]), max_size=3)
IPS = st.sampled_from(["198.18.0.1", "198.18.0.2", "203.0.113.9"])


@st.composite
def states(draw: st.DrawFn) -> GatewayState:
    vnis = sorted(draw(st.sets(VNIS, max_size=4)))
    switches = {v: LogicalSwitch(v, draw(st.sampled_from(["n0", "cust-42"])), draw(st.frozensets(IPS, max_size=3)))
                for v in vnis}
    bindings = {(draw(st.sampled_from(["p1", "Ethernet1/1"])), vlan): draw(st.sampled_from(vnis))
                for vlan in draw(st.sets(st.integers(1, 4094), max_size=4))} if vnis else {}
    macs = {(draw(st.sampled_from(vnis)), mac): draw(IPS)
            for mac in draw(MACS)} if vnis else {}
    return GatewayState(switches, bindings, macs)


@settings(max_examples=200, deadline=None)
@given(states(), st.dictionaries(VNIS, MACS, max_size=4))
def test_what_is_encoded_is_read_back_through_json(owned: GatewayState, local: dict[int, frozenset[str]]) -> None:
    data = json.loads(json.dumps(J.encode(owned, local)))  # as the store hands it back
    assert J.owned(data) == owned
    assert J.local_macs(data) == local
    assert J.macs(data[J.LOCAL_MACS]) == local  # the part the repository reads alone
    assert J.owned_rows(data) == {k: v for k, v in owned.to_dict().items()}
    assert set(data) == {*J.OWNED, J.LOCAL_MACS}


def test_the_owned_keys_are_those_of_the_gateway_state() -> None:
    assert tuple(GatewayState().to_dict()) == J.OWNED


def test_never_read_and_older_records_read_as_nothing() -> None:
    assert J.local_macs(None) == {} and J.macs(None) == {}
    assert J.local_macs({"logical_switches": []}) == {}  # recorded before MACs were
    assert J.owned_rows({"bindings": [{"port": "p1", "vlan": 10, "vni": 5000}]}) == {
        J.LOGICAL_SWITCHES: [], J.BINDINGS: [{"port": "p1", "vlan": 10, "vni": 5000}], J.REMOTE_MACS: []}
    assert J.owned({}) == GatewayState()
