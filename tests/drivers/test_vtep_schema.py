"""``Interpretation`` kept up to date row by row must mean exactly what the same rows mean read
from scratch, whatever the order and the interleaving of changes (the ``ovsdb`` driver relies
on it after every attach; a wrong incremental read would make a pass skip or redo work)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.drivers.vtep_schema import (
    LS_TABLE,
    MCAST_REMOTE,
    OWNER_KEY,
    UCAST_LOCAL,
    UCAST_REMOTE,
    Changes,
    Interpretation,
    Members,
    PortRows,
    VtepRows,
    interpret,
)

SWITCHES = [f"ls{i}" for i in range(6)]
PORTS = ["p1", "p2"]
IPS = ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
MACS = ["00:00:00:00:00:01", "00:00:00:00:00:02"]

ls_meaning = st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(5000, 5003)),
                       st.sampled_from([{OWNER_KEY: "true"}, {}, {OWNER_KEY: "false"}]))
mac_row = {
    MCAST_REMOTE: st.tuples(st.sampled_from(["unknown-dst", MACS[0]]), st.sampled_from(SWITCHES),
                            st.frozensets(st.sampled_from(IPS), max_size=3)),
    UCAST_REMOTE: st.tuples(st.sampled_from(MACS), st.sampled_from(SWITCHES), st.sampled_from(IPS)),
    UCAST_LOCAL: st.tuples(st.sampled_from(MACS), st.sampled_from(SWITCHES)),
}
port = st.builds(lambda name, faults, bindings: PortRows(name, faults, bindings), st.sampled_from(PORTS),
                 st.lists(st.sampled_from(["down"]), max_size=1),
                 st.dictionaries(st.integers(1, 6), st.sampled_from(SWITCHES), min_size=1, max_size=5))
change = st.one_of(
    st.tuples(st.just(LS_TABLE), st.sampled_from(SWITCHES), st.one_of(st.none(), ls_meaning)),
    *(st.tuples(st.just(t), st.integers(0, 5), st.one_of(st.none(), m)) for t, m in mac_row.items()),
    st.tuples(st.just("port"), st.sampled_from(PORTS), st.one_of(st.none(), port)),
)


class Device:
    """The rows as they stand, told to an Interpretation change by change."""

    def __init__(self) -> None:
        self.switches: dict[str, tuple] = {}
        self.rows: dict[str, dict[int, tuple]] = {t: {} for t in mac_row}
        self.ports: dict[str, PortRows] = {}
        self.it = Interpretation()

    def change(self, table: str, key: str | int, new: object) -> None:
        """As OVSDB allows: bindings name existing switches, a switch bound to stays."""
        if table == "port":
            if new is not None:
                bindings = {v: s for v, s in new.vlan_bindings.items() if s in self.switches}  # type: ignore[attr-defined]
                new = PortRows(str(key), new.faults, bindings)  # type: ignore[attr-defined]
                self.ports[str(key)] = new
            else:
                self.ports.pop(str(key), None)
            self.it.port(str(key), new)  # type: ignore[arg-type]
            return
        if table == LS_TABLE:
            if new is None and any(key in p.vlan_bindings.values() for p in self.ports.values()):
                return
            old = self.switches.pop(str(key), None)
            told_old = None if old is None else (key, old)
            if new is not None:
                self.switches[str(key)] = new  # type: ignore[assignment]
            self.it.row(table, key, told_old, None if new is None else (key, new))
            return
        old = self.rows[table].pop(int(key), None)
        if new is not None:
            self.rows[table][int(key)] = new  # type: ignore[assignment]
        self.it.row(table, key, old, new)  # type: ignore[arg-type]

    def from_scratch(self) -> tuple:
        rows = VtepRows(["fault"], list(self.ports.values()), dict(self.switches),
                        [self.rows[MCAST_REMOTE][k] for k in sorted(self.rows[MCAST_REMOTE])],
                        [self.rows[UCAST_REMOTE][k] for k in sorted(self.rows[UCAST_REMOTE])],
                        [self.rows[UCAST_LOCAL][k] for k in sorted(self.rows[UCAST_LOCAL])])
        return interpret(rows)


def _unambiguous(dev: Device) -> bool:
    """No two rows for one thing: which of two wins is a tie-break, not a meaning (row keys
    differ between the incremental reader and the from-scratch one here)."""
    seen: set[tuple] = set()
    for mac, sid, _ in dev.rows[MCAST_REMOTE].values():
        if mac == "unknown-dst":
            if sid in seen:
                return False
            seen.add(sid)
    keys = [(m[1], m[0]) for m in dev.rows[UCAST_REMOTE].values()]
    owned = [k for _n, k, c in dev.switches.values() if c.get(OWNER_KEY) == "true" and k is not None]
    foreign = [k for _n, k, c in dev.switches.values() if c.get(OWNER_KEY) != "true" and k is not None]
    return len(keys) == len(set(keys)) and len(owned) == len(set(owned)) and len(foreign) == len(set(foreign))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change, max_size=40), st.integers(1, 8))
def test_row_by_row_means_what_a_fresh_read_means(changes: list[tuple], every: int) -> None:
    dev = Device()
    for i, (table, key, new) in enumerate(changes):
        dev.change(table, key, new)
        if i % every == 0 and _unambiguous(dev):  # read now and then, as passes do
            assert dev.it.state(["fault"]) == dev.from_scratch()
    if _unambiguous(dev):
        assert dev.it.state(["fault"]) == dev.from_scratch()


def _differs(a: tuple, b: tuple) -> Changes:
    """Where two reads differ, key by key (what ``changes_since`` must cover)."""
    (sa, fa, la, _), (sb, fb, lb, _) = a, b
    vnis = {v for v in sa.logical_switches.keys() | sb.logical_switches.keys()
            if sa.logical_switches.get(v) != sb.logical_switches.get(v)}
    macs = sa.remote_macs.keys() | sb.remote_macs.keys()
    vnis |= {k[0] for k in macs if sa.remote_macs.get(k) != sb.remote_macs.get(k)}
    vnis |= {v for v in la.keys() | lb.keys() if la.get(v) != lb.get(v)}
    keys = {k for k in sa.bindings.keys() | sb.bindings.keys() if sa.bindings.get(k) != sb.bindings.get(k)}
    return Changes(frozenset(vnis), frozenset(keys), fa != fb)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(change, max_size=30), st.integers(1, 5))
def test_changes_since_covers_every_difference(changes: list[tuple], every: int) -> None:
    """A pass that looks only at what ``changes_since`` names misses nothing, and the facts stay
    the very same object while they do not change (a pass checks them by identity)."""
    dev = Device()
    seen: list[tuple[tuple[int, int], tuple]] = []
    for i, (table, key, new) in enumerate(changes):
        dev.change(table, key, new)
        if i % every == 0:
            state = dev.it.state()
            seen.append(((dev.it.serial, dev.it.version), state))
    now = dev.it.state()
    for version, then in seen:
        told = dev.it.changes_since(version)
        assert told is not None
        real = _differs(then, now)
        assert real.vnis <= told.vnis and real.bindings <= told.bindings
        assert not real.facts or told.facts
        if not told.facts:
            assert then[1] is now[1]
    assert dev.it.changes_since((dev.it.serial, dev.it.version)) == Changes()
    assert dev.it.changes_since((dev.it.serial + 10**6, 0)) is None


def test_a_binding_the_reader_did_not_touch_is_not_looked_at_again() -> None:
    """The port's map is compared by identity: an attach marks one binding, not the port's 200."""
    it = Interpretation()
    it.row(LS_TABLE, "s", None, ("s", ("net", 5000, {OWNER_KEY: "true"})))
    bindings = {vlan: "s" for vlan in range(1, 201)}
    it.port("p1", PortRows("p1", [], bindings))
    assert len(it.state()[0].bindings) == 200
    it.row(LS_TABLE, "t", None, ("t", ("net2", 5001, {OWNER_KEY: "true"})))
    it.port("p1", PortRows("p1", [], {**bindings, 201: "t"}))
    assert it._dirty_bindings == {("p1", 201)}
    state = it.state()[0]
    assert state.bindings[("p1", 201)] == 5001 and len(state.bindings) == 201


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, 12)), max_size=200))
def test_members_hold_what_a_dict_of_sets_holds(ops: list[tuple[bool, int, int]]) -> None:
    """``Members`` (tuples while few, a set beyond ``SMALL``) answers as a dict of sets that drops
    a key once its last member went, whatever the adds and discards."""
    members, model = Members(), {}
    for adding, key, member in ops:
        if adding:
            members.add(key, member)
            model.setdefault(key, set()).add(member)
        else:
            members.discard(key, member)
            if key in model:
                model[key].discard(member)
                if not model[key]:
                    del model[key]
        assert {k: set(v) for k, v in members.items()} == model
        assert all(len(v) == len(set(v)) for v in members.values())  # no member twice
