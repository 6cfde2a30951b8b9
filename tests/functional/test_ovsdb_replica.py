"""The IDL replica's compaction (drivers/ovsdb/compact.py, rows.py) against a real ovsdb-server:
equal values held once, lean rows read as the library reads them, and shared values that stay
right when one row holding them changes (vtep-ctl and ovsdb-client as the independent writers)."""

from __future__ import annotations

import gc
import json
import subprocess
import time
import tracemalloc

import ovs.db.idl
import ovs.poller
import pytest
from ovs.db.data import Datum

from silonet.devices.vtepdb import VtepDb
from silonet.drivers.ovsdb import held
from silonet.drivers.ovsdb.compact import PackedSet, SharedAtom, SharedDatum
from silonet.drivers.ovsdb.opening import fetch_schema
from silonet.drivers.ovsdb.replica import READ, MemoIdl, _mcast_row, port_rows
from silonet.drivers.ovsdb.rows import LeanRow, Rows

pytestmark = pytest.mark.ovs

TXN_DICTS = ("_changes", "_mutations", "_prereqs")


def ip(i: int) -> str:
    return f"198.18.{1 + i // 250}.{1 + i % 250}"


def fill(db: VtepDb, vnis: int, peers: int, same: int = 0) -> None:
    """One transaction: ``vnis`` logical switches bound on p1 (VLAN 100 + k), each flooding to its
    own window of ``peers`` locators (the last ``same`` switches to the first one's), all with one
    description and silonet's other_config."""
    ops: list[dict] = []
    for i in range(vnis + peers):
        ops.append({"op": "insert", "table": "Physical_Locator", "uuid-name": f"loc{i}",
                    "row": {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": ip(i)}})
    bindings = []
    for k in range(vnis):
        window = 0 if k >= vnis - same else k
        ops.append({"op": "insert", "table": "Physical_Locator_Set", "uuid-name": f"set{k}",
                    "row": {"locators": ["set", [["named-uuid", f"loc{window + j}"] for j in range(peers)]]}})
        ops.append({"op": "insert", "table": "Logical_Switch", "uuid-name": f"ls{k}",
                    "row": {"name": f"s{k}", "tunnel_key": 50000 + k, "description": "alike",
                            "other_config": ["map", [["silonet_managed", "true"]]]}})
        ops.append({"op": "insert", "table": "Mcast_Macs_Remote",
                    "row": {"MAC": "unknown-dst", "logical_switch": ["named-uuid", f"ls{k}"],
                            "locator_set": ["named-uuid", f"set{k}"]}})
        bindings.append([100 + k, ["named-uuid", f"ls{k}"]])
    ops.append({"op": "mutate", "table": "Physical_Port", "where": [["name", "==", "p1"]],
                "mutations": [["vlan_bindings", "insert", ["map", bindings]]]})
    out = subprocess.run(["ovsdb-client", "transact", db.unix, json.dumps(["hardware_vtep", *ops])],
                         check=True, capture_output=True, text=True)
    assert '"error"' not in out.stdout, out.stdout


def replica(db: VtepDb) -> MemoIdl:
    idl = MemoIdl(db.remote, fetch_schema(db.remote), leader_only=False)
    settle(idl)
    return idl


def settle(idl: MemoIdl, until: object = None) -> None:
    """Run the IDL until it monitors and nothing arrived for a few rounds (and ``until()``)."""
    deadline, quiet, last = time.monotonic() + 20, 0, -1
    while quiet < 3 or (until is not None and not until()):  # type: ignore[operator]
        assert time.monotonic() < deadline, "the replica did not settle"
        idl.run()
        quiet = quiet + 1 if idl.state == idl.IDL_S_MONITORING and idl.change_seqno == last else 0
        last = idl.change_seqno
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.timer_wait(30)
        poller.block()


def members(idl: MemoIdl) -> dict:
    """Each locator set's locators, read through the library's row attributes."""
    return {s.uuid: {loc.uuid for loc in s.locators} for s in idl.tables["Physical_Locator_Set"].rows.values()}


def views(idl: MemoIdl) -> None:
    for table, read in READ.items():
        idl.view(table, read)


def test_locator_sets_share_their_references_and_equal_values_are_held_once(vtepdb: VtepDb) -> None:
    fill(vtepdb, vnis=8, peers=10, same=2)
    idl, other = replica(vtepdb), replica(vtepdb)
    try:
        locators = idl.tables["Physical_Locator"].rows
        atoms = [a for pls in idl.tables["Physical_Locator_Set"].rows.values()
                 for a in pls._data["locators"].values]
        # windows 0..5 of 10 (the last two switches flood as the first): locators 0..14, the rest unused
        assert len(atoms) == 8 * 10 and len({id(a) for a in atoms}) == len(locators) == 15
        assert all(a.value is locators[a.value].uuid for a in atoms)  # the locator row's own UUID
        # a set that never changes is a tuple of them; read as the library reads it, the same set
        sets = [pls._data["locators"] for pls in idl.tables["Physical_Locator_Set"].rows.values()]
        assert all(isinstance(d, PackedSet) and list(d.values) == list(d.atoms) for d in sets)
        packed = sets[0]  # a change the server would refuse: a new datum, the packed one as it was
        patched = packed.diff(Datum(packed.type, {packed.atoms[0]: None}))
        assert type(patched) is Datum and list(patched.values) == list(packed.atoms[1:]) and len(packed.atoms) == 10
        assert members(idl) == members(other) and all(len(m) == 10 for m in members(idl).values())
        # a reference held by one-value columns: one datum per referenced row
        macs = list(idl.tables["Mcast_Macs_Remote"].rows.values())
        assert len({id(m._data["locator_set"]) for m in macs}) == len(idl.tables["Physical_Locator_Set"].rows)
        # equal values, one object: within a replica and across replicas
        for table, column in (("Physical_Locator", "encapsulation_type"), ("Logical_Switch", "description"),
                              ("Mcast_Macs_Remote", "MAC")):
            held = {id(r._data[column]) for i in (idl, other) for r in i.tables[table].rows.values()}
            assert len(held) == 1, (table, column)
        names = {r.name: r._data["name"] for r in idl.tables["Logical_Switch"].rows.values()}
        assert all(names[r.name] is r._data["name"] for r in other.tables["Logical_Switch"].rows.values())
        assert isinstance(names["s0"], SharedDatum)
        bindings = idl.tables["Physical_Port"].rows
        for key, value in next(p for p in bindings.values() if p.name == "p1")._data["vlan_bindings"].values.items():
            assert isinstance(key, SharedAtom) and idl.compactor.refs[value.value] is value
        # flood lists: equal ones are one frozenset, also as the driver reads them
        floods = [_mcast_row(m)[2] for m in macs]
        assert len({id(f) for f in floods}) == len(set(floods)) == 8 - 2
        views(idl)
        configs = [meaning[1][2] for meaning in idl.views["Logical_Switch"].values()]
        assert len({id(c) for c in configs}) == 1 and configs[0] == {"silonet_managed": "true"}
    finally:
        idl.close()
        other.close()


def test_locator_sets_are_read_straight_into_the_shared_atoms(vtepdb: VtepDb, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The server sends a locator set before the locators it names (one update): its references
    still become the locators' shared atoms without the library's parse (a ``uuid.UUID`` and an
    ``Atom`` per reference, replaced at once), and the replica reads as the library's would."""
    assert hasattr(ovs.db.idl.Idl, "_Idl__row_update"), "the OVS library renamed Idl.__row_update"
    parsed: list[object] = []
    real = Datum.from_json

    def counting(type_, json, symtab=None):  # type: ignore[no-untyped-def]
        if type_.key.ref_table_name == "Physical_Locator" and type_.n_max > 1:
            parsed.append(json)
        return real(type_, json, symtab)

    monkeypatch.setattr(Datum, "from_json", staticmethod(counting))
    fill(vtepdb, vnis=6, peers=10, same=2)
    idl = replica(vtepdb)  # the sets and their locators in its first update (the initial rows)
    try:
        locators = idl.tables["Physical_Locator"].rows
        sets = [pls._data["locators"] for pls in idl.tables["Physical_Locator_Set"].rows.values()]
        assert parsed == [] and len(sets) == 6 and all(isinstance(d, PackedSet) and len(d.atoms) == 10 for d in sets)
        assert idl.compactor.names == {}  # the texts of an update are let go with it
        atoms = [a for d in sets for a in d.atoms]
        # windows 0..3 of 10 (the last two switches flood as the first): locators 0..12, the rest collected
        assert len({id(a) for a in atoms}) == len(locators) == 13
        assert all(idl.compactor.refs[a.value] is a and a.value is locators[a.value].uuid for a in atoms)
    finally:
        idl.close()


def test_another_writers_locator_set_is_fetched_where_a_row_refers_to_it(vtepdb: VtepDb) -> None:
    """The monitor sends no inserts of locators and locator sets (``held.HELD``): a flood list
    another writer adds is found missing where its row refers to it (``missing``), fetched by UUID
    (``held.fetch``, as the link does before any reading), the set first and then its locators, after
    which the replica reads as a replica made afresh."""
    fill(vtepdb, vnis=2, peers=3)
    idl = replica(vtepdb)
    try:
        assert idl.missing() == {}  # the first reading brought every row
        sets = dict(idl.tables["Physical_Locator_Set"].rows)
        vtepdb.ctl("add-mcast-remote", "s1", "unknown-dst", ip(40), "--",
                   "add-ls", "s9", "--", "add-mcast-remote", "s9", "unknown-dst", ip(41))
        settle(idl, lambda: len(idl.tables["Mcast_Macs_Remote"].rows) == 3)
        assert idl.tables["Physical_Locator_Set"].rows.keys() <= sets.keys()  # the new sets did not come
        assert not any(loc.dst_ip in (ip(40), ip(41)) for loc in idl.tables["Physical_Locator"].rows.values())
        with pytest.raises(ConnectionError, match=r"Physical_Locator_Set .* another writer inserted: fetching"):
            views(idl)
        rounds = []
        while wanted := idl.missing():
            rounds.append({table: len(uuids) for table, uuids in wanted.items()})
            txn, asked = held.fetch(idl, wanted)
            idl.asking(asked)
            assert txn.commit_block() == txn.SUCCESS, txn.get_error()
            idl.hold(held.fetched(txn, asked))
            assert len(rounds) < 3
        assert rounds == [{"Physical_Locator_Set": 2}, {"Physical_Locator": 2}]
        views(idl)
        floods = {idl.tables["Logical_Switch"].rows[ls].name: flood for _mac, ls, flood in idl.views[
            "Mcast_Macs_Remote"].values()}
        assert floods == {"s0": {ip(0), ip(1), ip(2)}, "s1": {ip(1), ip(2), ip(3), ip(40)}, "s9": {ip(41)}}
        other = replica(vtepdb)
        try:
            assert members(idl) == members(other)
        finally:
            other.close()
    finally:
        idl.close()


def test_a_row_the_device_never_sends_is_asked_for_a_few_times_then_named(vtepdb: VtepDb) -> None:
    fill(vtepdb, vnis=1, peers=2)
    idl = replica(vtepdb)
    try:
        sets = idl.tables["Physical_Locator_Set"].rows
        (gone,) = list(sets)
        del sets[gone]  # as if the device had not sent it
        mmr = next(iter(idl.tables["Mcast_Macs_Remote"].rows.values()))
        idl.unchecked.add(("Mcast_Macs_Remote", mmr.uuid))
        asked = []
        for _ in range(held.FETCH_TRIES + 1):
            asked.append(wanted := idl.missing())
            txn, rows = held.fetch(idl, wanted)
            idl.asking(rows)  # asked for, and never sent
            txn.abort()
        assert asked == [{"Physical_Locator_Set": {gone}}] * held.FETCH_TRIES + [{}]
        with pytest.raises(ConnectionError, match=f"Physical_Locator_Set {gone}, which the device does not send"):
            _mcast_row(mmr)
    finally:
        idl.close()


def test_a_new_set_another_writer_removes_at_once_is_not_held(vtepdb: VtepDb) -> None:
    """silonet inserts a flood list (a set and the row using it); before the replica reads the
    answer, another writer removes that row and the device collects the set. The set enters the
    replica where the answer stands among the device's messages (``Transaction.on_success``), so
    the removal read after it in the same run takes it out again: no set the device lacks."""
    fill(vtepdb, vnis=1, peers=2)
    idl = replica(vtepdb)
    try:
        (loc, *_rest) = idl.tables["Physical_Locator"].rows
        (ls,) = idl.tables["Logical_Switch"].rows
        row = {"locators": ["set", [["uuid", str(loc)]]]}
        txn = held.Transaction(idl)
        txn.add_op({"op": "insert", "table": "Physical_Locator_Set", "uuid-name": "s", "row": row})
        txn.add_op({"op": "insert", "table": "Mcast_Macs_Remote", "row": {
            "MAC": "01:00:5e:00:00:01", "logical_switch": ["uuid", str(ls)], "locator_set": ["named-uuid", "s"]}})
        txn.on_success = lambda done: idl.hold([("Physical_Locator_Set", done.inserted(0), row, None)], own=True)
        assert txn.commit() == txn.INCOMPLETE  # sent; the replica reads nothing meanwhile
        assert txn.sent == 2  # the operations the request carried: each answer is read by its place
        where = [["MAC", "==", "01:00:5e:00:00:01"]]
        deadline = time.monotonic() + 10
        while '"count":1' not in subprocess.run(  # another writer, once the device holds it
                ["ovsdb-client", "transact", vtepdb.unix, json.dumps(["hardware_vtep", {
                    "op": "delete", "table": "Mcast_Macs_Remote", "where": where}])],
                check=True, capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "silonet's insert never reached the device"
            time.sleep(0.02)
        settle(idl, lambda: txn.commit() == txn.SUCCESS)
        on_device = vtepdb.ctl("--columns=_uuid", "list", "Physical_Locator_Set").split()[2::3]
        assert set(map(str, idl.tables["Physical_Locator_Set"].rows)) == set(on_device)
        assert len(on_device) == 1 and txn.inserted(0) not in on_device
    finally:
        idl.close()


def test_a_lean_row_has_the_librarys_attributes_but_the_transaction_dicts(vtepdb: VtepDb) -> None:
    idl = replica(vtepdb)
    try:
        table = idl.tables["Physical_Locator"]
        lean = LeanRow.committed(idl, table, "u")
        made = ovs.db.idl.Row(idl, table, "u", ovs.db.idl.ColumnDefaultDict(table))
        library = {k: v for k, v in vars(made).items() if k not in TXN_DICTS}
        assert vars(lean).keys() == library.keys() and type(lean._data) is type(made._data)
        assert all(vars(lean)[k] == v for k, v in library.items() if k != "_data")
    finally:
        idl.close()


def test_what_is_not_a_well_formed_set_of_references_goes_to_the_librarys_parse(vtepdb: VtepDb) -> None:
    fill(vtepdb, vnis=1, peers=3)
    idl = replica(vtepdb)
    try:
        compactor, column = idl.compactor, idl.tables["Physical_Locator_Set"].columns["locators"]
        assert compactor.frozen_refs["Physical_Locator_Set"] == {"locators": "Physical_Locator"}
        known = [str(u) for u in idl.tables["Physical_Locator"].rows]
        good = compactor.packed(column.type, "Physical_Locator", ["set", [["uuid", u] for u in known]])
        rows = idl.tables["Physical_Locator"].rows
        assert good is not None and [str(a.value) for a in good.atoms] == known
        assert all(a.value is rows[a.value].uuid and compactor.refs[a.value] is a for a in good.atoms)
        one = compactor.packed(column.type, "Physical_Locator", ["uuid", known[0]])  # a set of one, unwrapped
        assert one is not None and one.atoms == good.atoms[:1]
        for bad in (["set", [["uuid", "not-a-uuid"]]], ["set", [["uuid", known[0]], ["uuid", known[0]]]],
                    ["set", [["named-uuid", "x"]]], ["set", [["uuid", 5]]], ["set", [["uuid", ["a"]]]],
                    ["map", [[1, 2]]], ["set", "x"], ["set"], "x", ["set", []], ["uuid", known[0] + "\n"]):
            assert compactor.packed(column.type, "Physical_Locator", bad) is None, bad
        # a set naming a row the device never sends: its atom goes with the update, not kept for good
        ghost = "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c02"
        assert compactor.packed(column.type, "Physical_Locator", ["uuid", ghost]) is not None
        compactor.updated()
        assert all(str(u) != ghost for u in compactor.refs) and compactor.names == {}
    finally:
        idl.close()


def test_a_reference_read_before_its_row_arrives_takes_the_rows_own_uuid(vtepdb: VtepDb) -> None:
    """The server may send a locator set before its locators (it did for silonet's own writes): the
    atom made for a reference then wraps the parsed UUID until the row arrives, then the row's own.
    Here the rows arrive as silonet's own inserts do (``MemoIdl.hold``, from a transaction's reply)."""
    fill(vtepdb, vnis=1, peers=2)
    idl = replica(vtepdb)
    try:
        text, set_text = "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c01", "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c03"
        column = idl.tables["Physical_Locator_Set"].columns["locators"]
        early = idl.compactor.packed(column.type, "Physical_Locator", ["uuid", text])
        assert early is not None and str(early.atoms[0].value) == text and idl.compactor.names[text] is early.atoms[0]
        seqno = idl.change_seqno
        idl.hold([("Physical_Locator", text, {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": ip(9)}, None),
                  ("Physical_Locator_Set", set_text, {"locators": ["uuid", text]}, None)])
        assert idl.change_seqno == seqno + 1 and idl.compactor.names == {}
        row = next(r for u, r in idl.tables["Physical_Locator"].rows.items() if str(u) == text)
        atom = early.atoms[0]
        assert atom.value is row.uuid and idl.compactor.refs[row.uuid] is atom and row.dst_ip == ip(9)
        held = [pls._data["locators"].atoms for pls in idl.tables["Physical_Locator_Set"].rows.values()]
        assert (atom,) in held
        idl.hold([("Physical_Locator", text, {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": ip(8)}, None)])
        assert row.dst_ip == ip(9) and idl.change_seqno == seqno + 1  # held already (an update brought it): as is
    finally:
        idl.close()


def test_rows_are_lean_and_read_as_the_library_reads_them(vtepdb: VtepDb) -> None:
    assert hasattr(ovs.db.idl.Idl, "_Idl__create_row"), "the OVS library renamed Idl.__create_row"
    fill(vtepdb, vnis=4, peers=5)
    vtepdb.ctl("add-ls", "theirs", "--", "set", "Logical_Switch", "theirs", "other_config:a=b")
    idl = replica(vtepdb)
    try:
        for name, table in idl.tables.items():
            assert type(table.rows) is Rows, name
            for row in table.rows.values():
                assert type(row) is LeanRow, name  # the override of Idl.__create_row is called
                assert not set(TXN_DICTS) & row.__dict__.keys()
                for column in table.columns:
                    assert getattr(row, column) == ovs.db.idl.Row.__getattr__(row, column), (name, column)
        with pytest.raises(AttributeError):
            next(iter(idl.tables["Logical_Switch"].rows.values())).no_such_column  # noqa: B018
    finally:
        idl.close()


def test_a_row_changing_a_shared_value_leaves_the_others_alone(vtepdb: VtepDb) -> None:
    fill(vtepdb, vnis=40, peers=3)  # p1 holds 40 bindings: an update patches them (compact.PATCH_FROM)
    idl = replica(vtepdb)
    try:
        switches = {r.name: r for r in idl.tables["Logical_Switch"].rows.values()}
        assert switches["s0"]._data["description"] is switches["s1"]._data["description"]
        vtepdb.ctl("set", "Logical_Switch", "s0", "description=changed", "other_config:silonet_managed=no",
                   "--", "add-ls", "s40", "--", "bind-ls", "ps1", "p1", "300", "s40")
        settle(idl, until=lambda: switches["s0"].description == "changed")
        assert switches["s1"].description == "alike" and switches["s0"].description == "changed"
        assert switches["s1"].other_config == {"silonet_managed": "true"}
        assert switches["s0"].other_config == {"silonet_managed": "no"}
        p1 = next(p for p in idl.tables["Physical_Port"].rows.values() if p.name == "p1")
        held = p1._data["vlan_bindings"].values
        assert all(isinstance(k, SharedAtom) and idl.compactor.refs[v.value] is v for k, v in held.items())
        names = {vlan: idl.tables["Logical_Switch"].rows[u].name for vlan, u in port_rows(p1).vlan_bindings.items()}
        assert names == {100 + k: f"s{k}" for k in range(40)} | {300: "s40"}
        # a row deleted: the references to it are forgotten with it
        s40 = next(r for r in idl.tables["Logical_Switch"].rows.values() if r.name == "s40").uuid
        assert s40 in idl.compactor.refs
        vtepdb.ctl("unbind-ls", "ps1", "p1", "300", "--", "del-ls", "s40")
        settle(idl, until=lambda: s40 not in idl.tables["Logical_Switch"].rows)
        assert s40 not in idl.compactor.refs
    finally:
        idl.close()


def test_a_transaction_writes_lean_rows_and_leaves_the_others_lean(vtepdb: VtepDb) -> None:
    fill(vtepdb, vnis=3, peers=2)
    idl = replica(vtepdb)
    try:
        rows = {r.name: r for r in idl.tables["Logical_Switch"].rows.values()}
        p1 = next(p for p in idl.tables["Physical_Port"].rows.values() if p.name == "p1")
        txn = ovs.db.idl.Transaction(idl)
        rows["s0"].verify("description")
        rows["s0"].description = "written"
        p1.setkey("vlan_bindings", 200, rows["s2"])
        rows["s1"].verify("name")  # a verified row the transaction does not hold: a wait on it all the same
        assert txn.commit_block() == txn.SUCCESS, txn.get_error()
        settle(idl, until=lambda: rows["s0"].description == "written")
        assert vtepdb.ctl("get", "Logical_Switch", "s0", "description").strip() == "written"
        assert port_rows(p1).vlan_bindings[200] == rows["s2"].uuid
        assert rows["s2"].description == "alike"
        assert not set(TXN_DICTS) & rows["s2"].__dict__.keys()
        # after the write, the rows it held are lean again once their update was told
        vtepdb.ctl("set", "Logical_Switch", "s0", "description=again")
        settle(idl, until=lambda: rows["s0"].description == "again")
        assert not set(TXN_DICTS) & rows["s0"].__dict__.keys()
    finally:
        idl.close()


def test_a_replica_of_a_fixed_shape_stays_small(vtepdb: VtepDb) -> None:
    """30 switches, each flooding to its own window of 99 locators (of 128), read as the driver
    reads them: ~1,340 KiB before the compaction, ~650 KiB after, ~540 KiB with the locator sets
    packed (tracemalloc, Python 3.11). The bound leaves room for another Python's object sizes,
    not for the compaction's loss (packing alone is ~110 KiB of it)."""
    fill(vtepdb, vnis=30, peers=99)
    replica(vtepdb).close()  # what the first replica leaves for all (the parsed schema) is not its own
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        idl = replica(vtepdb)
        views(idl)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    idl.close()
    assert held < 620 * 1024, f"the replica holds {held / 1024:.0f} KiB"
