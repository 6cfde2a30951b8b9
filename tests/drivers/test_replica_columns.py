"""``MemoIdl._columns``: the library's ``Idl.__row_update`` with one shared default per column for
the comparison. Property: for any update of a new row or of one holding values, the row's data and
the "changed" answer are the library's; the shared defaults are never stored in a row nor changed."""

from __future__ import annotations

import json
import uuid
from unittest import mock

import ovs.db.custom_index
import ovs.db.data
import ovs.db.idl
import ovs.ovsuuid
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from silonet.devices.vtepdb import SCHEMA
from silonet.drivers.ovsdb import held
from silonet.drivers.ovsdb.compact import members as members_of
from silonet.drivers.ovsdb.replica import MemoIdl, _ls_row
from silonet.drivers.ovsdb.rows import LeanRow

pytestmark = pytest.mark.skipif(not SCHEMA.exists(), reason=f"no hardware_vtep schema here ({SCHEMA}: Open vSwitch)")

TEXT = st.sampled_from(["", "ls1", "silonet network ls1 (VNI 5000)", "unknown-dst", "198.18.0.1"])
LS = st.fixed_dictionaries({}, optional={
    "name": TEXT, "description": TEXT, "tunnel_key": st.one_of(st.integers(0, 2**24), st.just(["set", []])),
    "other_config": st.lists(st.tuples(st.sampled_from(["silonet_managed", "k"]), TEXT), max_size=2,
                             unique_by=lambda t: t[0]).map(lambda kv: ["map", [list(p) for p in kv]]),
    "replication_mode": st.sampled_from(["source_node", "service_node", ["set", []]]),
    "bogus": st.just(1),  # not a column: warned and skipped
})
LOCATOR = st.fixed_dictionaries({}, optional={
    "encapsulation_type": st.just("vxlan_over_ipv4"), "dst_ip": TEXT,
    "tunnel_key": st.one_of(st.integers(0, 9), st.just(["set", []])), "dst_ip_bad": st.just(2),
})


def _idl() -> MemoIdl:
    helper = ovs.db.idl.SchemaHelper(str(SCHEMA))
    helper.register_all()
    return MemoIdl("unix:/nonexistent", helper)


def _both(idl: MemoIdl, table: str, before: dict, update: dict) -> None:
    t = idl.tables[table]
    rows = []
    library = lambda row, j: ovs.db.idl.Idl._Idl__row_update(idl, t, row, j)  # noqa: E731
    for apply in (library, lambda row, j: idl._columns(t, row, j)):
        row = LeanRow(idl, t, uuid.uuid4(), ovs.db.idl.ColumnDefaultDict(t))
        apply(row, dict(before))
        rows.append((row, apply(row, dict(update))))
    (lib, lib_changed), (ours, ours_changed) = rows
    assert dict(ours._data) == dict(lib._data) and ours_changed == lib_changed
    for column, default in idl._defaults.items():
        assert default == ovs.db.data.Datum.default(column.type)  # never changed
        assert all(v is not default for v in dict.values(ours._data))  # never stored


@settings(max_examples=200, deadline=None)
@given(before=LS, update=LS)
def test_logical_switch_updates_land_as_the_librarys(before: dict, update: dict) -> None:
    _both(_idl(), "Logical_Switch", before, update)


@settings(max_examples=100, deadline=None)
@given(before=LOCATOR, update=LOCATOR)
def test_locator_updates_land_as_the_librarys(before: dict, update: dict) -> None:
    _both(_idl(), "Physical_Locator", before, update)


def test_equal_schema_answers_share_one_parsed_schema_and_others_do_not() -> None:
    """``compact.schema_of``: keyed by the device's whole answer, not by what it says it is."""
    import copy
    import json

    from silonet.drivers.ovsdb.compact import schema_of
    from silonet.drivers.ovsdb.opening import COLUMNS

    answer = json.loads(SCHEMA.read_text())
    first, again = schema_of(answer, COLUMNS), schema_of(copy.deepcopy(answer), COLUMNS)
    assert first is again
    older = copy.deepcopy(answer)  # same name, version and checksum, one column fewer
    del older["tables"]["Logical_Switch"]["columns"]["replication_mode"]
    other = schema_of(older, COLUMNS)
    assert other is not first
    assert "replication_mode" in first.get_idl_schema().tables["Logical_Switch"].columns
    assert "replication_mode" not in other.get_idl_schema().tables["Logical_Switch"].columns
    assert set(first.get_idl_schema().tables) == set(COLUMNS)  # only the tables silonet replicates


def test_a_value_some_row_holds_is_reused_only_for_its_very_column_type() -> None:
    """``Compactor.scalar``: an update's one-value string or integer that a row holds already is
    that row's shared datum, not parsed again, and only where the column type is the same: not a
    bool for an integer, not a string outside an enum, never a map or set; one no row holds is
    parsed once as the library parses it, and shared from then on."""
    idl = _idl()
    t, c = idl.tables["Logical_Switch"], idl.compactor
    row = LeanRow(idl, t, uuid.uuid4(), ovs.db.idl.ColumnDefaultDict(t))
    idl._columns(t, row, {"name": "held-once", "tunnel_key": 5000, "replication_mode": "source_node"})
    c.row(row, None)  # shared: weakly held while the row holds them
    name, key = row._data["name"], row._data["tunnel_key"]
    assert c.scalar("Logical_Switch", "name", "held-once") is name
    assert c.scalar("Logical_Switch", "description", "held-once") is name  # the same type: one datum
    assert c.scalar("Logical_Switch", "tunnel_key", 5000) is key
    assert c.scalar("Logical_Switch", "replication_mode", "source_node") is row._data["replication_mode"]
    for table, column, value in (("Logical_Switch", "tunnel_key", True), ("Logical_Switch", "tunnel_key", 5000.0),
                                 ("Logical_Switch", "replication_mode", "held-once"),
                                 ("Logical_Switch", "other_config", "x"),
                                 ("Mcast_Macs_Remote", "logical_switch", "held-once"), ("Database", "name", "x"),
                                 ("Logical_Switch", "name", ["set", ["held-once"]])):
        assert c.scalar(table, column, value) is None, (table, column, value)
    fresh = c.scalar("Logical_Switch", "name", "never-held")  # parsed once, as the library parses it
    assert fresh == ovs.db.data.Datum.from_json(t.columns["name"].type, "never-held")
    assert c.scalar("Logical_Switch", "name", "never-held") is fresh  # held while anything holds it
    other = LeanRow(idl, t, uuid.uuid4(), ovs.db.idl.ColumnDefaultDict(t))
    assert idl._columns(t, other, {"name": "held-once", "tunnel_key": 5000}) is True  # read as the library
    assert other._data["name"] is name and other._data["tunnel_key"] is key


@settings(max_examples=100, deadline=None)
@given(update=LS)
def test_a_switch_is_read_from_its_datums_as_its_attributes_say(update: dict) -> None:
    """``_ls_row`` reads a committed row's datums, and a row a transaction holds through its
    attributes: the same meaning either way."""
    idl = _idl()
    t = idl.tables["Logical_Switch"]
    row = LeanRow.committed(idl, t, uuid.uuid4())
    idl._columns(t, row, dict(update))
    by_attributes = (row.uuid, (row.name, row.tunnel_key[0] if row.tunnel_key else None, dict(row.other_config)))
    assert row.committed_data() is not None and _ls_row(row) == by_attributes
    row.__dict__["_changes"] = {}  # as a transaction's row: read through the attributes
    assert row.committed_data() is None and _ls_row(row) == by_attributes


HELD_LS = "6f1c1ad2-8f3e-4bde-9a52-3f7d1d2e4c10"  # a switch the replica holds (``_mcast_idl``)
REF = st.sampled_from([["uuid", HELD_LS], ["uuid", HELD_LS.upper()], ["uuid", str(uuid.UUID(int=7))],
                       ["uuid", "not-a-uuid"], ["uuid", 7], ["set", []],
                       ["set", [["uuid", HELD_LS]]], ["named-uuid", "x"], HELD_LS])
MCAST = st.fixed_dictionaries({}, optional={"MAC": TEXT, "logical_switch": REF, "locator_set": REF})


def _mcast_idl() -> MemoIdl:
    idl = _idl()
    t = idl.tables["Logical_Switch"]
    t.rows[uuid.UUID(HELD_LS)] = LeanRow(idl, t, uuid.UUID(HELD_LS), ovs.db.idl.ColumnDefaultDict(t))
    return idl


@settings(max_examples=200, deadline=None)
@given(before=MCAST, update=MCAST)
def test_references_land_as_the_librarys(before: dict, update: dict) -> None:
    """A reference to a held row (``Compactor.reference``) or to any other, or no reference at all:
    the row's data and the "changed" answer are the library's."""
    _both(_mcast_idl(), "Mcast_Macs_Remote", before, update)


def test_a_reference_to_a_held_row_is_one_datum_with_that_rows_atom_and_no_parse() -> None:
    idl = _mcast_idl()
    t, c = idl.tables["Mcast_Macs_Remote"], idl.compactor
    rows = [LeanRow(idl, t, uuid.uuid4(), ovs.db.idl.ColumnDefaultDict(t)) for _ in range(2)]
    with mock.patch.object(ovs.db.data.Datum, "from_json", side_effect=AssertionError("parsed")):
        for row in rows:
            assert idl._columns(t, row, {"logical_switch": ["uuid", HELD_LS]}) is True
    first, second = (r._data["logical_switch"] for r in rows)
    assert first is second  # one datum, as ``Compactor.row`` shares it
    (atom,) = first.values
    assert atom.value is idl.tables["Logical_Switch"].rows[uuid.UUID(HELD_LS)].uuid  # the row's own UUID
    c.row(rows[0], None)
    assert rows[0]._data["logical_switch"] is first  # sharing it again changes nothing
    c.updated()  # the update's texts go: the next one checks its text again, and finds the same datum
    assert c.reference("Mcast_Macs_Remote", "logical_switch", c.plans["Mcast_Macs_Remote"]["logical_switch"][1],
                       "Logical_Switch", ["uuid", HELD_LS]) is first


def test_an_updates_tables_are_read_referenced_first() -> None:
    """ovsdb-server lists an update's tables in its hash's order: remote MACs before the switches they
    name are read after them, so each reference is found, not parsed (and the replica is the same)."""
    replicas = []
    for first in ("Mcast_Macs_Remote", "Logical_Switch"):
        idl = _idl()
        lset, loc = str(uuid.uuid4()), str(uuid.uuid4())
        idl._Idl__parse_update({"Physical_Locator": {loc: {"initial": {"encapsulation_type": "vxlan_over_ipv4",
                                                                         "dst_ip": "198.18.0.2"}}},
                                "Physical_Locator_Set": {lset: {"initial": {"locators": ["uuid", loc]}}}},
                               ovs.db.idl.OVSDB_UPDATE2)
        switches = [str(uuid.UUID(int=i + 1)) for i in range(3)]
        tables = {"Logical_Switch": {u: {"insert": {"name": f"ls{i}", "tunnel_key": 5000 + i}}
                                     for i, u in enumerate(switches)},
                  "Mcast_Macs_Remote": {str(uuid.UUID(int=100 + i)): {"insert": {
                      "MAC": "unknown-dst", "logical_switch": ["uuid", u], "locator_set": ["uuid", lset]}}
                      for i, u in enumerate(switches)}}
        parsed: list[str | None] = []

        def counted(type_: object, json_: object, *a: object, parsed: list = parsed,
                    real: object = ovs.db.data.Datum.from_json) -> object:
            parsed.append(getattr(getattr(type_, "key", None), "ref_table_name", None))
            return real(type_, json_, *a)  # type: ignore[operator]

        with mock.patch.object(ovs.db.data.Datum, "from_json", counted):
            idl._Idl__parse_update({t: tables[t] for t in (first, *(set(tables) - {first}))}, ovs.db.idl.OVSDB_UPDATE2)
        assert "Logical_Switch" not in parsed and "Physical_Locator_Set" not in parsed
        rows = idl.tables["Mcast_Macs_Remote"].rows.values()
        replicas.append(sorted((r.uuid, r.logical_switch.name, [x.dst_ip for x in r.locator_set.locators])
                               for r in rows))
    assert replicas[0] == replicas[1] and len(replicas[0]) == 3


def _all_columns_idl(readonly: dict[str, list[str]]) -> MemoIdl:
    helper = ovs.db.idl.SchemaHelper(str(SCHEMA))
    for table, columns in json.loads(SCHEMA.read_text())["tables"].items():
        helper.register_columns(table, list(columns["columns"]), readonly=readonly.get(table, []))
    return MemoIdl("unix:/nonexistent", helper)


VTEP_TABLES = sorted(json.loads(SCHEMA.read_text())["tables"]) if SCHEMA.exists() else ["Logical_Switch"]


@settings(max_examples=150, deadline=None)
@given(table=st.sampled_from(VTEP_TABLES), data=st.data())
def test_a_new_rows_defaults_are_the_librarys(table: str, data: st.DataObject) -> None:
    """``MemoIdl._Idl__add_default``: a new row's JSON completed exactly as ``Idl.__add_default``
    completes it (columns that must hold a value, not maps, not read-only, absent), for any table,
    any columns the device sent and any read-only columns."""
    columns = sorted(json.loads(SCHEMA.read_text())["tables"][table]["columns"])
    readonly = data.draw(st.lists(st.sampled_from(columns), unique=True), label="readonly")
    sent = data.draw(st.lists(st.sampled_from(columns), unique=True), label="sent")
    idl = _all_columns_idl({table: readonly})
    t = idl.tables[table]
    for _ in range(2):  # the second time from the columns found the first
        ours, theirs = {c: "sent" for c in sent}, {c: "sent" for c in sent}
        idl._Idl__add_default(t, ours)
        ovs.db.idl.Idl._Idl__add_default(idl, t, theirs)
        assert ours == theirs
    a, b = {}, {}
    idl._Idl__add_default(t, a)
    idl._Idl__add_default(t, b)
    for column, value in a.items():  # each row its own default, never one shared list
        assert value == b[column] and (not isinstance(value, list) or value is not b[column])


def test_the_update_parse_reads_the_schema_without_the_librarys_attribute_forwarding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``rows.lean_tables``: ``IdlTable`` and ``IdlColumn`` forward every attribute they lack to the
    schema through ``__getattr__``, a Python call for each ``table.name`` or ``column.type`` the
    library reads per row and per column; the IDL's tables and columns hold those as their own, so a
    parse of inserted and changed rows never forwards one, and the rows are what the update says."""
    idl = _idl()
    for table in idl.tables.values():
        assert vars(table)["name"] == table._table.name
        for column in table.columns.values():
            assert vars(column)["name"] == column._column.name and vars(column)["type"] is column._column.type
    forwarded: list[str] = []
    for cls in (ovs.db.idl.IdlTable, ovs.db.idl.IdlColumn):
        def forward(self: object, name: str, real: object = cls.__getattr__) -> object:
            forwarded.append(name)
            return real(self, name)  # type: ignore[operator]
        monkeypatch.setattr(cls, "__getattr__", forward)
    ls, port, loc, lset, mcast = (str(uuid.uuid4()) for _ in range(5))
    update = {"Physical_Port": {port: {"initial": {"name": "p1"}}},
              "Physical_Locator": {loc: {"initial": {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": "198.18.0.2"}}},
              "Physical_Locator_Set": {lset: {"initial": {"locators": ["uuid", loc]}}}}
    idl._Idl__parse_update(update, ovs.db.idl.OVSDB_UPDATE2)
    update = {"Logical_Switch": {ls: {"insert": {"name": "ls1", "tunnel_key": 5000}}},
              "Mcast_Macs_Remote": {mcast: {"insert": {"MAC": "unknown-dst", "logical_switch": ["uuid", ls],
                                                       "locator_set": ["uuid", lset]}}},
              "Physical_Port": {port: {"modify": {"vlan_bindings": ["map", [[100, ["uuid", ls]]]]}}}}
    idl._Idl__parse_update(update, ovs.db.idl.OVSDB_UPDATE2)
    assert forwarded == []
    row = idl.tables["Mcast_Macs_Remote"].rows[uuid.UUID(mcast)]
    assert row.MAC == "unknown-dst" and row.logical_switch.name == "ls1" and row.locator_set.uuid == uuid.UUID(lset)
    assert idl.tables["Physical_Port"].rows[uuid.UUID(port)].vlan_bindings[100].tunnel_key == [5000]


def _locators(idl: MemoIdl, n: int, texts: list[str] | None = None) -> list[str]:
    texts = texts or [str(uuid.uuid4()) for _ in range(n)]
    idl.hold([("Physical_Locator", t, {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": f"198.18.1.{i}"}, None)
              for i, t in enumerate(texts)], own=True)
    return texts


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.integers(0, 7), min_size=0, max_size=10))
def test_a_set_held_by_its_members_uuids_is_the_set_read_from_its_json(picks: list[int]) -> None:
    """``held.Members`` (a locator set silonet inserted, by its locators' UUIDs) lands in the replica
    as the same set read from the JSON: the same shared atom per locator, in the same order, the same
    meaning, and anything the column refuses (no member, a repeated one) read from the JSON as before."""
    replicas, texts = [], [str(uuid.uuid4()) for _ in range(8)]
    for members in (True, False):
        idl = _idl()
        _locators(idl, 8, texts)
        chosen = tuple(uuid.UUID(texts[i]) for i in picks)
        row = (held.Members("locators", chosen) if members else
               {"locators": ["set", [["uuid", str(u)] for u in chosen]]})
        set_text = "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c01"
        idl.hold([("Physical_Locator_Set", set_text, row, None)], own=True)
        got = idl.tables["Physical_Locator_Set"].rows[uuid.UUID(set_text)]
        atoms = list(members_of(dict.get(got._data, "locators") or got._data["locators"]))
        shared = [idl.compactor.refs.get(uuid.UUID(t)) for t in texts]
        assert all(any(a is s for s in shared) for a in atoms if a.value in {uuid.UUID(t) for t in texts})
        replicas.append(([a.value for a in atoms], got.locators and [r.uuid for r in got.locators]))
    assert replicas[0] == replicas[1]


def test_a_set_held_by_its_members_reads_no_json_and_no_uuid_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of ``held.Members``: no reference written out as text and parsed back."""
    idl = _idl()
    texts = _locators(idl, 5)
    parsed: list[object] = []
    real = idl.compactor.packed
    monkeypatch.setattr(idl.compactor, "packed", lambda *a: parsed.append(a) or real(*a))
    monkeypatch.setattr(ovs.ovsuuid, "is_valid_string", lambda s: parsed.append(s) or True)
    idl.hold([("Physical_Locator_Set", str(uuid.uuid4()), held.Members("locators", tuple(map(uuid.UUID, texts))),
               None)], own=True)
    assert parsed == []
    (row,) = idl.tables["Physical_Locator_Set"].rows.values()
    assert [a.value for a in members_of(row._data["locators"])] == list(map(uuid.UUID, texts))  # as given
    assert sorted(r.dst_ip for r in row.locators) == [f"198.18.1.{i}" for i in range(5)]


def test_a_row_held_by_a_uuid_made_already_is_the_row_held_by_its_text() -> None:
    """``MemoIdl.hold`` takes the device's UUID as text (a fetch) or as the UUID ``landed`` made once
    for each insert (it names the same locator in many sets): one row, under that UUID, either way."""
    text = str(uuid.uuid4())
    rows = []
    for row_id in (text, uuid.UUID(text)):
        idl = _idl()
        idl.hold([("Physical_Locator", row_id, {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": "198.18.1.7"},
                   None)], own=True)
        (row,) = idl.tables["Physical_Locator"].rows.values()
        rows.append((type(row.uuid), row.uuid, row.dst_ip, row.encapsulation_type))
    assert rows[0] == rows[1] == (uuid.UUID, uuid.UUID(text), "198.18.1.7", "vxlan_over_ipv4")


def test_an_idl_is_made_without_a_class_per_table() -> None:
    """The library would build a namedtuple class per table of each IDL (``IndexEntryClass``) for
    custom indexes; a replica makes none, and a custom index's entry fails loudly."""
    import gc

    _idl()  # the first: the library is made lean
    before = sum(isinstance(o, type) for o in gc.get_objects())
    idls = [_idl() for _ in range(3)]
    assert sum(isinstance(o, type) for o in gc.get_objects()) == before
    table = idls[0].tables["Logical_Switch"]
    assert not table.rows.indexes
    with pytest.raises(TypeError, match="no custom index"):
        ovs.db.custom_index.IndexEntryClass(table)(uuid=None)
