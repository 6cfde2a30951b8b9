"""Locators and locator sets the monitor does not send as they are inserted.

Their rows never change once made (the schema's immutable columns, besides a locator's tunnel
key), and reading back a gateway's own flood lists cost a fifth of the manager's CPU in a converge
of 1,000 gateways (~10,000 locator references and ~1,000 locators per gateway, each parsed as an
update right after silonet wrote them; 63-73 CPU-s before, 53-56 after, and the devices' 17-20
CPU-s became 13.5). So the monitor asks for no inserts of ``HELD`` tables
(RFC 7047's ``select``); its first reading still brings every row, and changes and removals
still come. Rows enter the replica otherwise:

- silonet's own, from the reply to the transaction that inserted them (``Transaction.inserted``,
  the write's ``landed``), under the UUIDs the device gave them, as the reply is read;
- another writer's, fetched by UUID (``fetch``) as soon as a row the replica reads refers to one
  it lacks (``MemoIdl.missing``), before any reading of the replica runs again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import ovs.db.idl
import ovs.jsonrpc
import ovs.ovsuuid

HELD = ("Physical_Locator", "Physical_Locator_Set")
NO_INSERTS = {"initial": True, "insert": False, "delete": True, "modify": True}
MONITORS = ("monitor", "monitor_cond", "monitor_cond_since")
FETCH_TRIES = 3  # per row: a device that never sends a row it says exists is not asked forever
FETCH_ROWS = 1024  # per transaction: the rest in the next


def uuid_text(value: Any) -> str | None:
    """A UUID's text from a device's ``["uuid", text]``, checked as the library checks its own."""
    if (isinstance(value, list) and len(value) == 2 and value[0] == "uuid" and isinstance(value[1], str)
            and len(value[1]) == 36 and ovs.ovsuuid.is_valid_string(value[1])):
        return value[1]
    return None


class Transaction(ovs.db.idl.Transaction):
    """The library's transaction, keeping the device's answer to each operation (``results``):
    the UUIDs of the rows it inserted in ``HELD`` tables and the rows a ``fetch`` selected, which
    no update brings. ``on_success`` puts them in the replica where the reply stands among the
    device's messages: an update read after it in the same ``Idl.run`` (another writer removing
    the row that referred to a new set, which the device then collects) finds them there."""

    def __init__(self, idl: Any) -> None:
        super().__init__(idl)
        self.results: list[Any] = []
        self.on_success: Callable[[Transaction], None] | None = None
        self.sent: int | None = None  # the operations the request carried (``CountedSession``)

    def commit(self) -> str:
        status = super().commit()
        noted = getattr(self.idl._session, "transact", None)
        if noted is not None and self._request_id is not None and noted[0] == self._request_id:
            self.sent = noted[1]
        return status

    def _process_reply(self, msg: ovs.jsonrpc.Message) -> None:
        """The library's reading of the reply, and RFC 7047's rule that a reply holds one result per
        operation: the raw operations' answers are found by their place from the end (``answer``),
        so a success with fewer or more results than were asked would name other rows' UUIDs. It
        fails the transaction instead (the rows it did make are fetched by a later reading)."""
        if msg.type != ovs.jsonrpc.Message.T_ERROR and isinstance(msg.result, list):
            self.results = msg.result
        super()._process_reply(msg)
        if self._status == Transaction.SUCCESS and self.sent is not None and len(self.results) != self.sent:
            self._status = Transaction.ERROR
            self._error = f"the device answered {len(self.results)} results to {self.sent} operations"
        on_success, self.on_success = self.on_success, None  # often the write's, which holds this: no cycle
        if self._status == Transaction.SUCCESS and on_success is not None:
            on_success(self)

    def answer(self, index: int) -> dict[str, Any] | None:
        """The device's answer to raw operation ``index`` (of ``add_op``): the raw operations come
        last in the transaction, so last in the reply."""
        results = self.results
        at = len(results) - len(self._operations) + index
        got = results[at] if 0 <= at < len(results) else None
        return got if isinstance(got, dict) else None

    def inserted(self, index: int) -> str | None:
        """The UUID the device gave the row raw operation ``index`` inserted; None if it names none."""
        got = self.answer(index)
        return None if got is None else uuid_text(got.get("uuid"))


class Members(NamedTuple):
    """A row silonet inserted whose one column is a set of references (a locator set's locators),
    by the UUIDs of the rows it names: what ``MemoIdl.hold`` puts in the replica without the JSON
    of each reference written out (``named``) and read back."""

    column: str
    uuids: tuple[uuid.UUID, ...]

    def json(self) -> dict[str, Any]:
        """The row as ``named`` writes it."""
        return {self.column: ["set", [["uuid", str(u)] for u in self.uuids]]}


def named(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A row's JSON as the device holds it: its references to rows of the same transaction by
    the UUIDs the device gave them (a set's, or a single one)."""
    out = {}
    for column, value in row.items():
        if isinstance(value, list) and value and value[0] == "set":
            value = ["set", [["uuid", names[v[1]]] if v[0] == "named-uuid" else v for v in value[1]]]
        elif isinstance(value, list) and value and value[0] == "named-uuid":
            value = ["uuid", names[value[1]]]
        out[column] = value
    return out


def fetch(idl: Any, wanted: dict[str, set[uuid.UUID]]) -> tuple[Transaction, list[tuple[str, uuid.UUID]]]:
    """A transaction selecting rows of ``HELD`` tables by UUID, with the columns the replica
    holds (sent by the caller; ``fetched`` reads its answer), and the rows it asks for."""
    txn, asked = Transaction(idl), []
    for table, uuids in wanted.items():
        columns = list(idl.tables[table].columns)
        for row_uuid in sorted(uuids)[:FETCH_ROWS - len(asked)]:
            txn.add_op({"op": "select", "table": table, "where": [["_uuid", "==", ["uuid", str(row_uuid)]]],
                        "columns": ["_uuid", *columns]})
            asked.append((table, row_uuid))
    return txn, asked


def fetched(txn: Transaction, asked: list[tuple[str, uuid.UUID]]) -> list[tuple[str, str, dict[str, Any], None]]:
    """The rows a ``fetch`` got, for ``MemoIdl.hold``: the one row each select names by the UUID
    asked for (a row removed meanwhile: none; anything else the device says: nothing)."""
    out = []
    for index, (table, row_uuid) in enumerate(asked):
        got = txn.answer(index)
        rows = got.get("rows") if got is not None else None
        if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
            continue
        row = dict(rows[0])
        if uuid_text(row.pop("_uuid", None)) != str(row_uuid):
            continue
        out.append((table, str(row_uuid), row, None))
    return out
