"""The IDL's replica as silonet reads it: what each row means, remembered until the row changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import ovs.db.data
import ovs.db.error
import ovs.db.idl
import ovs.jsonrpc

from silonet import heap
from silonet.drivers.ovsdb.compact import Compactor, members, shared_config, shared_schema
from silonet.drivers.ovsdb.held import FETCH_TRIES, HELD, MONITORS, NO_INSERTS, Members
from silonet.drivers.ovsdb.rows import LeanRow, lean_library, lean_tables
from silonet.drivers.ovsdb.session import CountedSession
from silonet.drivers.vtep_schema import LS_TABLE, MCAST_LOCAL, MCAST_REMOTE, UCAST_LOCAL, UCAST_REMOTE, PortRows
from silonet.plan.intern import CompactSet, shared_set

ENCAP = "vxlan_over_ipv4"
# A long reading (a monitor reply of 100,000 rows takes seconds, in one turn of the hub) sends the
# device the library's own echo request every KEEPALIVE_S, checked each KEEPALIVE_ROWS rows: the
# device drops a connection it heard nothing from for its inactivity probe (5 s, then 5 more after
# its echo), and a gateway holding 100,000 MACs was dropped on every reconnect, mid-reply.
KEEPALIVE_S = 1.0
KEEPALIVE_ROWS = 1024


def _opt(value: list) -> Any:
    return value[0] if value else None


def port_rows(p: Any) -> PortRows:
    """The bindings straight from the replica's datum: the row attribute converts the whole map to
    row objects, and a port's map changes (and is read again) on every attach. Switches go by
    their ``uuid.UUID`` here: the IDL patches the datum in place, so a binding that did not
    change keeps its very object, which is how ``Interpretation.port`` skips it."""
    bindings = {k.value: v.value for k, v in p._data["vlan_bindings"].values.items()}
    return PortRows(p.name, list(p.port_fault_status), bindings)


def _ls_row(ls: Any) -> tuple[uuid.UUID, tuple[str, int | None, dict[str, str]]]:
    """Row id and (name, tunnel key, other_config: shared with equal ones, never changed). A row no
    transaction changes is read from its datums (``LeanRow.committed_data``): what its attributes
    give, without a ``to_python`` of each."""
    data = ls.committed_data() if isinstance(ls, LeanRow) else None
    if data is None:
        return ls.uuid, (ls.name, _opt(ls.tunnel_key), shared_config(ls.other_config))
    name, config = data["name"].as_scalar(), data["other_config"].values
    return ls.uuid, ("" if name is None else name, data["tunnel_key"].as_scalar(),  # "": as ``to_python`` says
                     shared_config({k.value: v.value for k, v in config.items()}))


def referred(idl: Any, table: str, row_uuid: Any) -> Any:
    """The row of ``table`` (a ``HELD`` one) that a row refers to; one the replica lacks (another
    writer's, not fetched yet: ``held.fetch``) fails the reading."""
    row = idl.tables[table].rows.get(row_uuid)
    if row is None or row._data is None:
        raise idl.unresolved(table, row_uuid)
    return row


def _mcast_row(r: Any) -> tuple[str, uuid.UUID, CompactSet]:
    """The flood list is shared with equal ones (``shared_set``): 0.9 KiB each for 99 peers."""
    idl = r._idl
    pls = referred(idl, "Physical_Locator_Set", r._data["locator_set"].as_scalar())
    return r.MAC, r.logical_switch.uuid, idl.meaning(pls, set_ips)[0]


def _ucast_remote_row(r: Any) -> tuple[str, uuid.UUID, str]:
    return r.MAC, r.logical_switch.uuid, referred(r._idl, "Physical_Locator", r._data["locator"].as_scalar()).dst_ip


def locator(loc: Any) -> tuple[str, bool]:
    """A locator's IP, and whether it is a plain VXLAN one (silonet's flood lists use only those)."""
    return loc.dst_ip, loc.encapsulation_type == ENCAP and not loc.tunnel_key


def set_ips(pls: Any) -> tuple[CompactSet, bool]:
    """A locator set's IPs, and whether all its locators are plain VXLAN ones: one reading for the
    flood list a row means and for the sets a write may reuse, through the IDL's view of the
    locators (a row object per element and per reading was a tenth of a gateway's first write)."""
    idl = pls._idl
    view = idl.view("Physical_Locator", locator)
    got = [view.get(a.value) or locator(referred(idl, "Physical_Locator", a.value))
           for a in members(pls._data["locators"])]
    return shared_set(ip for ip, _plain in got), all(plain for _ip, plain in got)


def _ucast_local_row(r: Any) -> tuple[str, uuid.UUID]:
    return r.MAC, r.logical_switch.uuid


READ = {LS_TABLE: _ls_row, MCAST_REMOTE: _mcast_row, UCAST_REMOTE: _ucast_remote_row,
        UCAST_LOCAL: _ucast_local_row, MCAST_LOCAL: _ucast_local_row}  # what a row means: the journaled tables


class MemoIdl(ovs.db.idl.Idl):
    """An IDL that remembers what each row meant to silonet until the row changes.

    Reading a row through the OVS library converts every column on every access, which
    made a full read of a gateway with 200 logical switches cost ~20 ms; the IDL tells of
    every row it creates, updates or deletes (``notify``), so unchanged rows are read once.
    Whole tables are kept as views ({row uuid: meaning}) patched row by row, and what changed
    in the tables of ``READ`` is journaled as (row, old meaning, new meaning) for the driver's
    ``Interpretation``: a read or a plan after one attach costs the rows it touched.

    The rows are ``LeanRow``s in plain dicts (``rows``) and hold shared values (``compact``):
    each changed row is compacted as it is told.
    """

    def __init__(self, remote: str, schema_helper: ovs.db.idl.SchemaHelper, *args: Any, **kwargs: Any) -> None:
        lean_library()
        super().__init__(remote, shared_schema(schema_helper), *args, **kwargs)
        self._session.__class__ = CountedSession  # what each transaction sent: ``held.Transaction``
        lean_tables(self)
        self.memo: dict[Any, Any] = {}
        self.views: dict[str, dict[uuid.UUID, Any]] = {}
        self.stale: dict[str, set[uuid.UUID]] = {}  # per view: rows changed since, read again on use
        self.journal: dict[str, list[tuple[uuid.UUID, Any, Any]]] = {t: [] for t in READ}
        self.epoch = 0  # moves when views and journal start over: an interpretation of before is void
        self.compactor = Compactor(self.tables)
        self._defaults: dict[Any, ovs.db.data.Datum] = {}  # per column: its default, compared, never stored
        self._required: dict[str, list[tuple[str, Any]]] = {}  # per table: ``_Idl__add_default``'s columns
        # per table: its columns referring to ``HELD`` tables (``missing``)
        self.refs_held = {name: [(c, col.type.key.ref_table_name) for c, col in table.columns.items()
                                 if col.type.key.ref_table_name in HELD] for name, table in self.tables.items()}
        self.unchecked: set[tuple[str, uuid.UUID]] = set()  # rows told since, whose references ``missing`` checks
        self.tries: dict[uuid.UUID, int] = {}  # fetches of a missing row so far (``held.FETCH_TRIES``)
        self._rows_read = 0  # rows told since the connection began (``keepalive``)
        self._alive_at = time.monotonic()
        # called with each keepalive: the hub's other links, whose turns wait for this reading
        self.on_keepalive: Callable[[], None] | None = None

    def keepalive(self) -> None:
        """Each KEEPALIVE_ROWS rows read, when KEEPALIVE_S passed since the last: an echo request to
        this device (``ping``), then ``on_keepalive``."""
        self._rows_read += 1
        if self._rows_read % KEEPALIVE_ROWS:
            return
        now = time.monotonic()
        if now - self._alive_at >= KEEPALIVE_S:
            self._alive_at = now
            self.ping()
            if self.on_keepalive is not None:
                self.on_keepalive()

    def ping(self) -> None:
        """What the session sends as its own probe (id "echo": the session drops the reply)."""
        if self._session.is_connected():
            probe = ovs.jsonrpc.Message.create_request("echo", [])
            probe.id = "echo"
            self._session.send(probe)

    def send_request(self, request: ovs.jsonrpc.Message) -> Any:
        """The library's requests, with the monitor's of ``HELD`` tables asking for no inserts."""
        if request.method in MONITORS and len(request.params) > 2 and request.params[0] == self._db.name:
            for table in HELD:
                for monitored in request.params[2].get(table, ()):
                    monitored["select"] = NO_INSERTS
        return super().send_request(request)

    def unresolved(self, table: str, row_uuid: Any) -> ConnectionError:
        """The error a reading of a row referring to a missing row of ``table`` raises: the pass
        fails and is tried again once the row is fetched (``missing``)."""
        if self.tries.get(row_uuid, 0) >= FETCH_TRIES:
            return ConnectionError(f"a row refers to {table} {row_uuid}, which the device does not send "
                                   f"(asked {FETCH_TRIES} times)")
        return ConnectionError(f"a row refers to {table} {row_uuid}, which another writer inserted: "
                               "fetching it from the device")

    def missing(self) -> dict[str, set[uuid.UUID]]:
        """Rows of ``HELD`` tables that rows told since the last call refer to and the replica
        lacks (another writer's: the monitor sends no inserts there), by table, to fetch; a row
        asked for ``FETCH_TRIES`` times in vain (``asking``) is not asked for again."""
        out: dict[str, set[uuid.UUID]] = {}
        unchecked, tries, tables = self.unchecked, self.tries, self.tables
        for name, row_uuid in list(unchecked):
            row = tables[name].rows.get(row_uuid)
            lacking = False
            for column, ref in self.refs_held[name] if row is not None and row._data is not None else ():
                datum = dict.get(row._data, column)
                targets = tables[ref].rows
                for atom in members(datum) if datum is not None else ():
                    if atom.value not in targets and tries.get(atom.value, 0) < FETCH_TRIES:
                        out.setdefault(ref, set()).add(atom.value)
                        lacking = True
            if not lacking:
                unchecked.discard((name, row_uuid))
        if not out:  # what was asked for in vain and is no longer wanted (removed meanwhile) goes
            for row_uuid in [u for u, n in tries.items() if n < FETCH_TRIES]:
                del tries[row_uuid]
        return out

    def asking(self, asked: list[tuple[str, uuid.UUID]]) -> None:
        """Rows a fetch asks for (of those ``missing`` gave): each one's try is counted."""
        tries = self.tries
        for _table, row_uuid in asked:
            tries[row_uuid] = tries.get(row_uuid, 0) + 1

    def hold(self, rows: list[tuple[str, str | uuid.UUID, dict[str, Any] | Members, Any]], own: bool = False) -> None:
        """Rows of ``HELD`` tables a transaction of this IDL inserted (``own``) or a fetch got:
        (table, the UUID the device gave (as text, or made already), the row's JSON or its references
        by UUID (``held.Members``: a locator set of silonet's), what the row means if known: a flood
        list's ``set_ips``), into the replica as an update would bring them and told as ``notify`` tells
        (one an update brought, from a device ignoring ``select``, stays as it is). The references
        of ``own`` rows are to rows of this replica, or of the same transaction: not checked."""
        made, compactor = [], self.compactor
        try:
            for name, text, row_json, meaning in rows:
                table, row_uuid = self.tables[name], text if isinstance(text, uuid.UUID) else uuid.UUID(text)
                if row_uuid in table.rows:
                    continue
                row = self._Idl__create_row(table, row_uuid)
                if not isinstance(row_json, Members):
                    self._Idl__row_update(table, row, row_json)
                elif not self._members(table, row, row_json):  # a set its column refuses: as the library reads it
                    self._Idl__row_update(table, row, row_json.json())
                table.rows[row_uuid] = row
                made.append((row, meaning))
                self.tries.pop(row_uuid, None)
        finally:
            compactor.updated()
        for row, meaning in made:
            self.keepalive()
            name = row._table.name
            compactor.row(row, None)
            if not own and self.refs_held[name]:
                self.unchecked.add((name, row.uuid))
            if meaning is not None:
                self.memo[row.uuid] = meaning
            else:
                self.memo.pop(row.uuid, None)
            stale = self.stale.get(name)
            if stale is not None:
                stale.add(row.uuid)
        if made:
            self.change_seqno += 1

    def _members(self, table: Any, row: Any, members: Members) -> bool:
        """A new row's set of references from their UUIDs (``held.Members``), as ``_Idl__row_update``
        would read it from the JSON; False (nothing stored) where the set breaks its column's rules."""
        column = table.columns.get(members.column)
        if column is None or members.column not in self.compactor.frozen_refs.get(table.name, {}):
            return False
        datum = self.compactor.refs_set(column.type, column.type.key.ref_table_name, members.uuids)
        if datum is None:
            return False
        dict.__setitem__(row._data, members.column, datum)
        return True

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        """The library's hook, called for every row an update created, changed or deleted, once the
        whole update is applied (so the rows it refers to are there)."""
        self.keepalive()
        if event == ovs.db.idl.ROW_DELETE:
            self.compactor.deleted(row._table.name, row.uuid)
        else:  # the columns it changed (``updates`` holds their old values); a new row's: all
            self.compactor.row(row, None if updates is None else updates._data)
            if isinstance(row, LeanRow):
                row.lean()  # a row this IDL wrote has the dicts its transaction left
            if self.refs_held[row._table.name]:
                self.unchecked.add((row._table.name, row.uuid))
        self.memo.pop(row.uuid, None)
        stale = self.stale.get(row._table.name)
        if stale is not None:  # read later: rows it refers to may arrive later in the same update
            stale.add(row.uuid)

    def _Idl__create_row(self, table: Any, row_uuid: uuid.UUID) -> LeanRow:  # the library's private name
        """Every row of the replica, as the library makes them (``Idl.__create_row``), lean."""
        return LeanRow.committed(self, table, row_uuid)

    def _Idl__parse_update(self, update: Any, *args: Any, **kwargs: Any) -> Any:  # the library's private name
        """One update, read (``Idl.__parse_update``); the references' texts it held are let go. Its
        tables are read referenced first (``Compactor.order``): ovsdb-server lists them in its hash's
        order, and a row naming a row of the same update that is not read yet (a switch's remote
        MACs before the switch) has its reference parsed by the library and shared afterwards."""
        if type(update) is dict and len(update) > 1:
            order = self.compactor.order
            update = dict(sorted(update.items(), key=lambda item: order.get(item[0], 0)))
        try:
            return super()._Idl__parse_update(update, *args, **kwargs)  # type: ignore[misc]
        finally:
            self.compactor.updated()

    def _Idl__process_update2(self, table: Any, row_uuid: uuid.UUID, row_update: dict[str, Any]) -> Any:
        """One row of an update (``Idl.__process_update2``). A change to, or the removal of, a row of
        a ``HELD`` table this replica never got (another writer's) is nothing to it: the library
        would stop reading the rest of the update at such a change ("Modify non-existing row")."""
        if table.name in HELD and row_uuid not in table.rows and ("modify" in row_update or "delete" in row_update):
            return False
        return super()._Idl__process_update2(table, row_uuid, row_update)  # type: ignore[misc]

    def _Idl__add_default(self, table: Any, row_update: dict[str, Any]) -> None:  # the library's private name
        """A new row's JSON completed as ``Idl.__add_default`` does (each column that must hold a
        value, is not a map nor read-only here and is absent gets its type's default), with those
        columns found once per table: the library looks at every column of every new row."""
        required = self._required.get(table.name)
        if required is None:
            readonly = self.readonly.get(table.name, ())
            required = self._required[table.name] = [
                (column.name, self._Idl__column_name(column)) for column in table.columns.values()
                if column.name not in readonly and column.type.n_min != 0 and not column.type.is_map()]
        for name, default in required:
            if name not in row_update:
                row_update[name] = list(default) if isinstance(default, list) else default

    def _Idl__row_update(self, table: Any, row: Any, row_json: dict[str, Any]) -> bool:  # the library's private name
        """A row's columns from an update (``Idl.__row_update``); a locator set's references go
        straight to their shared atoms (``Compactor.packed``), the rest through the library."""
        self.keepalive()
        frozen = self.compactor.frozen_refs.get(table.name)
        if not frozen:
            return self._columns(table, row, row_json)
        fast = {}
        for name, ref in frozen.items():
            if name in row_json and (datum := self.compactor.packed(table.columns[name].type, ref,
                                                                   row_json[name])) is not None:
                fast[name] = datum
        if not fast:
            return self._columns(table, row, row_json)
        rest = {k: v for k, v in row_json.items() if k not in fast}
        changed = self._columns(table, row, rest) if rest else False
        data = row._data
        for name, datum in fast.items():
            old = dict.get(data, name)  # not ``data[name]``: a missing column's default is made on read
            if old is None or old != datum:  # as the library compares: the members, in any order
                dict.__setitem__(data, name, datum)
                changed = changed or table.columns[name].alert
        return changed

    def _columns(self, table: Any, row: Any, row_json: dict[str, Any]) -> bool:
        """The library's ``Idl.__row_update``, line for line, but a column the row does not hold is
        compared with one default datum per column (``_defaults``, only ever compared): the
        library's ``row._data[name]`` makes a new one each time, for every column of every new row
        (4 % of the manager's CPU in a converge of 1,000 gateways). A one-value string or integer
        some row holds already is that row's shared datum (``Compactor.scalar``), not parsed again."""
        changed = False
        data, columns, defaults, scalar = row._data, table.columns, self._defaults, self.compactor.scalar
        for name, datum_json in row_json.items():
            column = columns.get(name)
            if not column:
                ovs.db.idl.vlog.warn(f"unknown column {name} updating table {table.name}")
                continue
            try:
                datum = scalar(table.name, name, datum_json)
                if datum is None:
                    datum = ovs.db.data.Datum.from_json(column.type, datum_json)
            except ovs.db.error.Error as err:
                ovs.db.idl.vlog.warn(f"error parsing column {name} in table {table.name}: {err}")
                continue
            old = dict.get(data, name)
            if old is None:
                old = defaults.get(column)
                if old is None:
                    old = defaults[column] = ovs.db.data.Datum.default(column.type)
            if datum != old:
                data[name] = datum
                changed = changed or column.alert
        return changed

    def close(self) -> None:
        """The session closed: this IDL, its tables and rows are one cycle the collector may find
        frozen (``heap.freeze_young``), for a full collection to free (``heap.reclaim``)."""
        super().close()
        heap.closed()

    def _Idl__clear(self) -> None:  # the library's private name: its tables emptied
        """The library empties its tables without telling (a server that lost our history): so
        must every view, the journal and the driver's interpretation."""
        super()._Idl__clear()  # type: ignore[misc]
        self.compactor.clear()
        self.forget()

    def forget(self) -> None:
        """A (re)connection may bring back rows without telling."""
        self.memo.clear()
        self.tries.clear()
        self.views.clear()
        self.stale.clear()
        for changes in self.journal.values():
            changes.clear()
        self.epoch += 1

    def drain(self, table: str) -> list[tuple[uuid.UUID, Any, Any]]:
        """The journaled changes of ``table`` since the last drain (refresh its view first)."""
        changes = self.journal[table]
        self.journal[table] = []
        return changes

    def meaning(self, row: Any, read: Callable[[Any], Any]) -> Any:
        """``read(row)``, remembered until the row changes."""
        out = self.memo.get(row.uuid)
        if out is None:
            out = self.memo[row.uuid] = read(row)
        return out

    def view(self, table: str, read: Callable[[Any], Any]) -> dict[uuid.UUID, Any]:
        """``{uuid: read(row)}`` of the table's committed rows (one ``read`` per table)."""
        rows = self.tables[table].rows
        view = self.views.get(table)
        journal = self.journal.get(table)
        if view is None:
            view = self.views[table] = {u: read(r) for u, r in rows.items() if r._data is not None}
            self.stale[table] = set()
            if journal is not None:
                journal.extend((u, None, meaning) for u, meaning in view.items())
            return view
        stale = self.stale[table]
        for u in list(stale):
            r = rows.get(u)
            new = read(r) if r is not None and r._data is not None else None  # may fail: the row stays stale
            old = view.pop(u, None)
            if new is not None:
                view[u] = new
            if journal is not None and old != new:
                journal.append((u, old, new))
            stale.discard(u)
        return view
