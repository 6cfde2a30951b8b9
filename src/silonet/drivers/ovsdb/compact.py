"""Equal values of the IDL replicas held once: a replica of the scale bench's gateway (100 VNIs
flooding to 99 peers) took ~2.4 MiB, ~0.7 MiB with this, ``rows`` and the shared flood lists.

The OVS library parses every value of every update into objects of its own: a ``Datum`` with a
dict of ``Atom``s, each wrapping its value, a ``uuid.UUID`` for each reference. A flood list's
locator set (99 references) cost ~19 KiB, a one-value column ~320 bytes. Most of those values
are equal to others: a set's references are the locators' UUIDs, every gateway carrying a VNI
has its switch's name, key and description, every gateway flooding to a peer has its IP.

``Compactor.row`` (called from ``MemoIdl.notify``, once the update is applied, and ``MemoIdl.hold``)
puts in the changed columns of a row the one object held for each value instead of the parsed copy:

- a reference (an atom of a column with a ``refTable`` this IDL replicates) is one ``Atom`` per
  referenced row, wrapping that row's own UUID object, kept by the IDL until the row is deleted;
- a set of a column the schema says never changes (a locator set) is a tuple of those atoms
  (``PackedSet``), not a dict; ``packed`` reads one straight from an update's JSON into the shared
  atoms (``MemoIdl``'s row update), where the library made a ``uuid.UUID`` and an ``Atom`` per
  reference only for this to replace them: a tenth of the manager's CPU in a converge;
- a one-value column's datum (not a map, at most one value, holding one) is one datum per value
  and column type, shared by the rows of every replica (held weakly: it lives while rows hold it;
  a reference's, by the referencing IDL until the referenced row is deleted). The library never
  changes such a datum in place (``Datum.diff`` returns the new one), so sharing it is safe. An
  update's string, integer or reference that some row holds already is found before the library
  would parse it (``scalar``, ``reference``), and ``row`` passes over what is shared already;
- the other atoms of sets and maps (strings, integers) are shared like one-value datums. Sets
  and maps themselves stay the row's own (``Datum.diff`` patches them in place).

``shared_set`` (``plan.intern``: the compiler's flood lists are the same objects) and
``shared_config`` do the same for what silonet reads from rows: flood lists (``CompactSet``s of IPs)
and logical switches' ``other_config`` (silonet's are all alike); ``shared_schema`` for the parsed
schema of the IDLs of equal ones. The rows and tables: ``rows``.
"""

from __future__ import annotations

import json
import sys
import uuid
import weakref
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

import ovs.db.error
import ovs.db.idl
import ovs.db.schema
import ovs.ovsuuid
from ovs.db.data import Atom, Datum
from ovs.db.types import Type, UuidType


class SharedDatum(Datum):
    """A one-value datum held by many rows (weakly referenced by ``_SCALARS``)."""

    __slots__ = ("__weakref__",)


class SharedRef(Datum):
    """A one-value reference datum held by every row referring to one row (``Compactor.ref_scalars``)."""

    __slots__ = ()


class PackedSet(Datum):
    """A set of a column the schema says never changes (a locator set's references): its atoms in
    a tuple (~0.9 KiB for 99, a dict was ~4.7 KiB: 0.45 MiB of each bench gateway's replica). A
    reader of ``values`` gets the dict made afresh (``members``: the atoms without it). The server
    refuses any change to such a column; were one sent anyway, ``diff`` makes a new plain datum
    (the library's patches ``values`` in place, which here would be a dict nobody keeps)."""

    __slots__ = ("atoms",)

    @property  # type: ignore[override]
    def values(self) -> dict[Atom, None]:
        return dict.fromkeys(self.atoms)

    @values.setter
    def values(self, values: dict[Atom, None]) -> None:
        self.atoms = tuple(values)

    def diff(self, datum: Datum) -> Datum:
        return Datum(self.type, self.values).diff(datum)


def members(datum: Datum) -> Iterable[Atom]:
    """The atoms of a set's datum, packed or not."""
    return datum.atoms if isinstance(datum, PackedSet) else datum.values


class SharedAtom(Atom):
    """A string or integer of a set or map held by many rows (weakly referenced by ``_ATOMS``)."""

    __slots__ = ("__weakref__",)


# Process-wide, for the IDLs of every gateway (one hub thread or several: each operation is a
# single dict operation under the GIL; two threads racing on one key at worst share less).
_SCALARS: weakref.WeakValueDictionary[tuple, SharedDatum] = weakref.WeakValueDictionary()
_ATOMS: weakref.WeakValueDictionary[tuple, SharedAtom] = weakref.WeakValueDictionary()

_SCHEMAS: dict[str, ovs.db.schema.DbSchema] = {}  # a few: one per schema version and column choice
_HELPERS: dict[str, ovs.db.idl.SchemaHelper] = {}  # the same, by the device's answer (``schema_of``)
SCHEMAS_KEPT = 64  # each of the two; beyond, a schema is parsed (and held) by its own IDLs only

# what ``Compactor.row`` leaves as it is: the one datum for its value (a ``SharedDatum`` in a row is
# the one ``_SCALARS`` holds: held weakly, it lives while the row holds it), or a packed set
_SHARED = (SharedDatum, SharedRef, PackedSet)
_INT = attrgetter("int")  # a UUID's value, hashed in C (``UUID.__hash__`` is Python)
SCALAR, MANY, FROZEN = 1, 2, 3  # one value; a set or map; a set of a column that never changes
PATCH_FROM = 32  # a set or map this large is patched where an update changed it, not rebuilt


class _Parsed(ovs.db.idl.SchemaHelper):
    """A helper handing out a schema already parsed (``Idl`` takes the schema from a helper)."""

    def __init__(self, schema: ovs.db.schema.DbSchema) -> None:  # no JSON to keep
        self._schema = schema

    def get_idl_schema(self) -> ovs.db.schema.DbSchema:
        return self._schema


def shared_schema(helper: ovs.db.idl.SchemaHelper) -> ovs.db.idl.SchemaHelper:
    """A helper for the schema ``helper`` makes, parsed once for all IDLs of an equal one (the
    library reads an IDL's schema and never changes it: each IDL wraps its tables and columns in
    objects of its own)."""
    if isinstance(helper, _Parsed):  # shared already (``schema_of``)
        return helper
    schema = helper.get_idl_schema()
    key = json.dumps([schema.to_json(), schema.readonly], sort_keys=True)
    found = _SCHEMAS.get(key)
    if found is None:
        found = schema
        if len(_SCHEMAS) < SCHEMAS_KEPT:  # a device sending a new schema each time is not kept each time
            _SCHEMAS[key] = schema
    return _Parsed(found)


def schema_of(schema_json: dict, columns: dict[str, list[str]]) -> ovs.db.idl.SchemaHelper:
    """The shared helper for a device's schema (its ``get_schema`` answer) with ``columns`` of it
    replicated (those it has), keyed by the answer's whole text: parsing it for each connection
    was 2 % of a 1,000-gateway converge (1.5 ms each against 0.2 ms for the key). Not by its
    version and checksum: a device that lied about them would hand its schema to the others."""
    key = json.dumps([schema_json, columns], sort_keys=True)
    found = _HELPERS.get(key)
    if found is None:
        helper = ovs.db.idl.SchemaHelper(schema_json=schema_json)
        tables = schema_json.get("tables", {})
        for table, wanted in columns.items():
            if have := [c for c in wanted if c in tables.get(table, {}).get("columns", {})]:
                helper.register_columns(table, have)
        found = shared_schema(helper)
        if len(_HELPERS) < SCHEMAS_KEPT:  # devices sending a new schema each time are parsed each time
            _HELPERS[key] = found
    return found


class Config(dict):
    """A string map held by many meanings: never changed (weakly referenced by ``_CONFIGS``)."""

    __slots__ = ("__weakref__",)


_CONFIGS: weakref.WeakValueDictionary[frozenset, Config] = weakref.WeakValueDictionary()


def shared_config(items: dict[str, str]) -> dict[str, str]:
    """A copy of ``items`` that its readers share with equal ones (and must not change)."""
    key = frozenset(items.items())
    out = _CONFIGS.get(key)
    if out is None:
        out = _CONFIGS[key] = Config(items)
    return out


def _plan(table: Any) -> dict[str, tuple[int, str, str | None, str | None]]:
    """Per column: (kind, type key, referenced table of keys, of values). The type key (the type's
    JSON, interned) tells which datums may stand for each other: same type, same constraints."""
    out = {}
    for name, column in table.columns.items():
        t = column.type
        kind = MANY if t.is_map() or t.n_max > 1 else SCALAR
        if kind == MANY and not t.is_map() and not column.mutable:
            kind = FROZEN
        key = sys.intern(json.dumps(t.to_json(), sort_keys=True))
        out[name] = (kind, key, t.key.ref_table_name, t.value.ref_table_name if t.value is not None else None)
    return out


def _referenced_first(plans: dict[str, dict[str, tuple[int, str, str | None, str | None]]]) -> dict[str, int]:
    """Each table's rank: one more than the highest of the other tables its columns refer to (a cycle
    is cut where it closes), so reading tables by rank reads a referenced row before its referrers."""
    refs = {table: {r for _k, _key, ref, value_ref in plan.values() for r in (ref, value_ref)
                    if r is not None and r != table and r in plans} for table, plan in plans.items()}
    rank: dict[str, int] = {}

    def visit(table: str, path: frozenset[str]) -> int:
        if table not in rank:
            rank[table] = 1 + max((visit(t, path | {table}) for t in refs[table] if t not in path), default=-1)
        return rank[table]

    for table in plans:
        visit(table, frozenset())
    return rank


class Compactor:
    """One IDL's shared references, and the shared values of its rows' columns."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.tables = tables
        self.plans = {name: _plan(table) for name, table in tables.items()}
        self.refs: dict[uuid.UUID, Atom] = {}  # referenced row's UUID -> the one atom for it
        # the same atoms by the UUID's text, as the update being read spells it (``MemoIdl`` empties it
        # after each update: kept, its strings were ~50 MiB at 1,000 gateways)
        self.names: dict[str, Atom] = {}
        self.early: list[tuple[uuid.UUID, str]] = []  # (row, table) of atoms made before their row (``_held``)
        # the same atoms by the identity of the UUID objects ``refs_set`` was given while one write lands
        # (``MemoIdl.hold``, which keeps those objects alive, empties it): a locator is named by ~10 of a
        # gateway's sets, and each look-up by UUID is a Python ``UUID.__hash__``
        self.given: dict[int, Atom] = {}
        # per table: its columns of FROZEN references to a table this IDL holds (``packed``)
        self.frozen_refs: dict[str, dict[str, str]] = {
            table: {c: ref for c, (kind, _key, ref, _v) in plan.items() if kind == FROZEN and ref in tables}
            for table, plan in self.plans.items()}
        self.order = _referenced_first(self.plans)  # table -> its rank: the tables it refers to rank lower
        self.ref_scalars: dict[str, dict[uuid.UUID, Datum]] = {}  # type key -> referenced row -> datum
        self.ref_types: dict[str, set[str]] = {}  # table -> type keys of one-value columns referencing it
        for plan in self.plans.values():
            for kind, key, ref, _value_ref in plan.values():
                if kind == SCALAR and ref in tables:
                    self.ref_types.setdefault(ref, set()).add(key)
                    self.ref_scalars[key] = {}

    def clear(self) -> None:
        self.refs.clear()
        self.names.clear()
        self.early.clear()
        for held in self.ref_scalars.values():
            held.clear()

    def deleted(self, table: str, row_uuid: uuid.UUID) -> None:
        """A row went: references to it go with it (the server removes them)."""
        if self.refs.pop(row_uuid, None) is not None:
            for key in self.ref_types.get(table, ()):
                self.ref_scalars[key].pop(row_uuid, None)

    def row(self, row: Any, old: dict[str, Datum] | None) -> None:
        """Put shared values in the columns of ``row`` an update changed (``old``: their values
        before, as the library tells them; None: a new row, every column)."""
        data = row._data
        if data is None:
            return
        if old is None and (held := self.refs.get(row.uuid)) is not None and held.value is not row.uuid:
            del self.refs[row.uuid]  # an atom made before its row arrived (``_held``): the row's own UUID now
            held.value = row.uuid
            self.refs[row.uuid] = held
        plan = self.plans[row._table.name]
        for name in dict.keys(data if old is None else old):
            datum = dict.get(data, name)  # not ``data[name]``: a missing column's default is made on read
            how = plan.get(name)
            if datum is None or how is None or type(datum) in _SHARED or not datum.values:
                continue  # shared already (a PackedSet: no dict made to look)
            kind, key, ref, value_ref = how
            if kind == SCALAR:
                shared = self._scalar(datum, key, ref)
            elif kind == FROZEN:
                shared = PackedSet(datum.type, {self._atom(k, ref): None for k in datum.values})
            else:
                shared = self._many(datum, None if old is None else dict.get(old, name), ref, value_ref)
            if shared is not datum:
                dict.__setitem__(data, name, shared)

    def _scalar(self, datum: Datum, key: str, ref: str | None) -> Datum:
        ((atom, _none),) = datum.values.items()
        if ref is not None:
            canon = self._row_atom(atom.value, ref)
            return datum if canon is None else self._ref_datum(key, canon, datum.type)
        shared_key = (key, type(atom.value), atom.value)
        out = _SCALARS.get(shared_key)
        if out is None:
            out = _SCALARS[shared_key] = SharedDatum(datum.type, datum.values)
        return out

    def _many(self, datum: Datum, old: Datum | None, ref: str | None, value_ref: str | None) -> Datum:
        """The datum stays the row's own (``Datum.diff`` patches it in place): its atoms are shared.
        A large one an update patched (a port's bindings, one more per attach) is patched too:
        what it held before (``old``, a copy holding the very atoms) is shared already."""
        atom, values = self._atom, datum.values
        if old is None or len(values) < PATCH_FROM:
            datum.values = {atom(k, ref): (None if v is None else atom(v, value_ref)) for k, v in values.items()}
            return datum
        keys, held = set(map(id, old.values)), set(map(id, old.values.values()))
        for k, v in [(k, v) for k, v in values.items() if id(k) not in keys or id(v) not in held]:
            shared, value = atom(k, ref), None if v is None else atom(v, value_ref)
            if shared is not k:
                del values[k]
            values[shared] = value
        return datum

    def _atom(self, atom: Atom, ref: str | None) -> Atom:
        if atom.type is UuidType:
            return (self._row_atom(atom.value, ref) if ref is not None else None) or atom
        key = (atom.type, type(atom.value), atom.value)  # 1.0 is not 1
        out = _ATOMS.get(key)
        if out is None:
            out = _ATOMS[key] = SharedAtom(atom.type, atom.value)
        return out

    def _row_atom(self, row_uuid: uuid.UUID, ref: str) -> Atom | None:
        """The one atom for row ``row_uuid`` of ``ref``, a row this IDL holds (None: not held, a
        reference to it left as is)."""
        out = self.refs.get(row_uuid)
        if out is None:
            table = self.tables.get(ref)
            target = table.rows.get(row_uuid) if table is not None else None
            if target is None:
                return None
            out = self.refs[target.uuid] = Atom(UuidType, target.uuid)
        return out

    def _held(self, row_uuid: uuid.UUID, ref: str) -> Atom:
        """The one atom for a reference to a row of ``ref`` that this update brings, or brought:
        the server sends a locator set before the locators it names (a strong reference: they are
        in the same update, or here already), so the atom may come before its row does."""
        out = self.refs.get(row_uuid)
        if out is None:
            target = self.tables[ref].rows.get(row_uuid)
            out = self.refs[row_uuid] = Atom(UuidType, row_uuid if target is None else target.uuid)
            if target is None:
                self.early.append((row_uuid, ref))
        return out

    def scalar(self, table: str, column: str, value: Any) -> Datum | None:
        """The shared datum of a one-value column whose value (an update's JSON) is a string or an
        integer (parsed and checked as this very column type once, as ``Datum.from_json`` would:
        the shared datums are keyed by it), or a reference to a row this IDL holds (``reference``).
        None: the library parses it."""
        plan = self.plans.get(table)  # None: the server's own database (``_Server``), not replicated
        how = plan.get(column) if plan is not None else None
        if how is None or how[0] != SCALAR:
            return None
        if how[2] is not None:
            return self.reference(table, column, how[1], how[2], value)
        if type(value) not in (str, int):
            return None
        key = (how[1], type(value), value)
        out = _SCALARS.get(key)
        if out is None:  # none held: parsed as the library parses a one-value column's plain value
            column_type = self.tables[table].columns[column].type
            try:
                atom = Atom.from_json(column_type.key, value)
            except ovs.db.error.Error:
                return None  # the library parses it again, and says why
            out = _SCALARS[key] = SharedDatum(column_type, {atom: None})
        return out

    def reference(self, table: str, column: str, key: str, ref: str, value: Any) -> Datum | None:
        """The shared datum of a one-value reference column (``["uuid", text]``) to a row this IDL
        holds, as ``row`` would make it of the library's parse: the text checked as the library checks
        it (``ovs.ovsuuid.from_json``: a UUID's 36 characters; the column's type has no other rule for
        a reference), its atom the referenced row's (``_ref``). The library's ``Datum.from_json`` and
        then ``row``'s sharing were a fifth of an update's parse. None: not such a value, or a row not
        held (yet): the library parses it, and ``row`` shares it once the row is here."""
        if type(value) is not list or len(value) != 2 or value[0] != "uuid" or ref not in self.tables:
            return None
        text = value[1]
        atom = self.names.get(text) if type(text) is str else None
        if atom is None:
            if type(text) is not str or len(text) != 36 or not ovs.ovsuuid.is_valid_string(text):
                return None
            atom = self._row_atom(uuid.UUID(text), ref)
            if atom is None:
                return None
            self.names[text] = atom
        return self._ref_datum(key, atom, self.tables[table].columns[column].type)

    def _ref_datum(self, key: str, atom: Atom, type_: Type) -> SharedRef:
        """The one datum of columns of type ``key`` referring to the row of ``atom`` (a shared atom)."""
        held = self.ref_scalars[key]
        out = held.get(atom.value)
        if out is None:
            out = held[atom.value] = SharedRef(type_, {atom: None})
        return out

    def updated(self) -> None:
        """An update was read: its texts go, and so do atoms of rows it named but never brought (a
        device breaking its own references would otherwise grow ``refs`` for good)."""
        self.names.clear()
        self.given.clear()
        for row_uuid, ref in self.early:
            if row_uuid not in self.tables[ref].rows:
                self.refs.pop(row_uuid, None)
        self.early.clear()

    def refs_set(self, type_: Type, ref: str, uuids: tuple[uuid.UUID, ...]) -> PackedSet | None:
        """The datum of a FROZEN reference column holding the rows ``uuids`` (a row silonet inserted:
        ``held.Members``), every element the shared atom of its row, as ``packed`` makes it from
        the JSON; None when they break the column's bounds or repeat one (read the JSON then)."""
        if not type_.n_min <= len(uuids) <= type_.n_max or len(set(map(_INT, uuids))) != len(uuids):
            return None
        held, given, atoms = self._held, self.given, []
        for u in uuids:
            atom = given.get(id(u))
            if atom is None:
                atom = given[id(u)] = held(u, ref)
            atoms.append(atom)
        return PackedSet(type_, atoms)

    def packed(self, type_: Type, ref: str, json: Any) -> PackedSet | None:
        """The datum of a FROZEN reference column (``frozen_refs``) read from an update's JSON, every
        element the shared atom of its row (``_held``); None when the JSON is not a well-formed set
        of well-formed references: the library parses it then, with its own checks and errors. A
        text seen before is the very string of a valid UUID."""
        if not isinstance(json, list) or len(json) != 2:
            return None
        inner = json[1] if json[0] == "set" else [json]
        if not isinstance(inner, list) or not type_.n_min <= len(inner) <= type_.n_max:
            return None
        names, atoms = self.names, []
        for element in inner:
            if not isinstance(element, list) or len(element) != 2 or element[0] != "uuid":
                return None
            text = element[1]
            atom = names.get(text) if isinstance(text, str) else None
            if atom is None:
                # 36 characters: the library's check (``re.match`` with ``$``) lets a trailing newline by
                if not isinstance(text, str) or len(text) != 36 or not ovs.ovsuuid.is_valid_string(text):
                    return None
                atom = names[text] = self._held(uuid.UUID(text), ref)
            atoms.append(atom)
        if len(set(map(id, atoms))) != len(atoms):  # one atom per row: a duplicate is the library's error
            return None
        return PackedSet(type_, atoms)
