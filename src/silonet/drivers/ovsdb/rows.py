"""The replica's rows and tables without what silonet never uses (per-row and per-table costs).

``Row.__init__`` gives every row three empty dicts for the changes a transaction may make to it
(192 bytes a row), and ``IdlTable.rows`` (``IndexedRows``) builds a
namedtuple class per table and wraps each row in a list, for custom indexes silonet never makes
(~60 KiB an IDL, and a namedtuple class per table: ``lean_library``). ``LeanRow`` and ``Rows``
are what the library needs of them, no more.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import ovs.db.custom_index
import ovs.db.idl

_EMPTY: MappingProxyType = MappingProxyType({})
_MISSING = object()


class Rows(dict):
    """A table's rows {UUID: row}: what the library does with ``IdlTable.rows`` (get, set, delete,
    clear, iterate) without ``IndexedRows``' custom indexes (``indexes`` is empty for good:
    ``Idl.index_create`` fails, and silonet makes none)."""

    __slots__ = ()
    indexes = MappingProxyType({})


class _NoIndexEntry(tuple):
    """``IndexedRows.IndexEntry`` of every table in a silonet process: the library builds one
    namedtuple class per table of each IDL it makes (``custom_index.IndexEntryClass``, by ``exec``)
    for custom indexes silonet never makes, and ``lean_tables`` drops the rows holding it at once:
    a thousand IDLs made ~10,000 classes (~375,000 objects in cycles) for the collector to walk and
    free. A custom index would need one: its use fails loudly."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> _NoIndexEntry:
        raise TypeError("silonet's replicas have no custom index (ovs.db.custom_index)")


def _no_index_entry(table: Any) -> type:
    return _NoIndexEntry


def lean_library() -> None:
    """Before an IDL is made: its tables' ``IndexedRows`` get ``_NoIndexEntry`` (idempotent)."""
    if ovs.db.custom_index.IndexEntryClass is not _no_index_entry:
        ovs.db.custom_index.IndexEntryClass = _no_index_entry


def lean_tables(idl: ovs.db.idl.Idl) -> None:
    """Give the IDL's tables plain row dicts (before any row arrives), and the schema attributes
    the library reads per row and per column as their own: ``IdlTable`` and ``IdlColumn`` hand
    every other attribute on through ``__getattr__``, a Python call for each ``table.name``,
    ``column.name`` or ``column.type`` of the update parse (the schema never changes under them)."""
    for table in idl.tables.values():
        assert not table.rows, "rows arrived before the tables were made lean"
        table.rows = Rows()
        if "_table" in vars(table):  # the library's wrapper of the schema (a plain schema needs none)
            table.name = table._table.name
        for column in table.columns.values():
            if "_column" in vars(column):
                column.name, column.type = column._column.name, column._column.type


def _own(row: Any, name: str, joined: bool) -> Any:
    """The row's own ``name`` dict, made when a transaction may write it: ``_changes`` and
    ``_mutations`` once the row is one of the transaction's rows (the library adds it before it
    writes either), ``_prereqs`` in any transaction (``Row.verify`` writes it without adding the
    row). Else one shared, read-only empty mapping: a write there fails loudly, never silently."""
    d = row.__dict__
    out = d.get(name, _MISSING)
    if out is _MISSING:
        txn = d["_idl"].txn
        if txn is None or (joined and txn._txn_rows.get(d["uuid"]) is not row):
            return _EMPTY
        out = d[name] = {}
    return out


class LeanRow(ovs.db.idl.Row):
    """A replica row (``MemoIdl`` makes them) whose transaction dicts exist only while a
    transaction changes it. ``Transaction`` gives the rows it held fresh dicts when it ends;
    ``lean()`` drops them again once they are empty and no transaction runs.

    A column of a row no transaction changes is its committed value, read straight from the
    datum: what ``Row.__getattr__`` returns for it, without its round trip through a new datum
    for sets and maps (and the five looks at the transaction dicts)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean()

    @classmethod
    def committed(cls, idl: Any, table: Any, row_uuid: Any) -> LeanRow:
        """A new row of the replica, lean from the start: ``Row.__init__``'s attributes without the
        three dicts ``lean`` would drop at once (while no transaction runs; else as the library)."""
        if idl.txn is not None:
            return cls(idl, table, row_uuid, ovs.db.idl.ColumnDefaultDict(table))
        row = cls.__new__(cls)
        d = row.__dict__
        d["uuid"], d["_idl"], d["_table"], d["_persist_uuid"] = row_uuid, idl, table, False
        d["_data"] = ovs.db.idl.ColumnDefaultDict(table)
        return row

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        data, table = d.get("_data"), d.get("_table")
        if data is None or table is None or name not in table.columns or "_changes" in d or "_mutations" in d:
            return super().__getattr__(name)  # a transaction's row, or no such column: the library's
        return data[name].to_python(self._uuid_to_row)

    def committed_data(self) -> Any:
        """The row's datums by column (its ``_data``, missing columns made as their default on
        read), or None while a transaction holds changes to it: its attributes say what it holds then."""
        d = self.__dict__
        return None if "_changes" in d or "_mutations" in d else d.get("_data")

    def lean(self) -> None:
        """Drop the transaction dicts left empty (none is, while a transaction runs)."""
        d = self.__dict__
        for name in ("_changes", "_mutations", "_prereqs"):
            if d.get(name, None) == {} and d["_idl"].txn is None:
                del d[name]

    _changes = property(lambda self: _own(self, "_changes", True))
    _mutations = property(lambda self: _own(self, "_mutations", True))
    _prereqs = property(lambda self: _own(self, "_prereqs", False))
