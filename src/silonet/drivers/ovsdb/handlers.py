"""What each plan operation writes to hardware_vtep: one small handler per operation.

Like ovsdbapp's ``Command.run_idl(txn)``: every handler gets the pass's ``Write`` (the one IDL
transaction of the batch and the lookups its operations share) and its operation, and is
idempotent the way ovsdbapp's ``may_exist``/``if_exists`` are: an ensure updates what is there,
a removal of what is not there does nothing (``plan.apply_ops`` is the model). Columns whose
contents decided the plan are ``verify()``-ed, so a concurrent writer makes the commit
TRY_AGAIN and the reconciler re-reads and re-plans instead of overwriting what it did not see.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

import ovs.db.idl

from silonet.drivers.base import EPOCH_KEY, Fence, read_epoch
from silonet.drivers.ovsdb import held
from silonet.drivers.ovsdb.held import Transaction
from silonet.drivers.ovsdb.replica import ENCAP, MemoIdl, locator, port_rows, set_ips
from silonet.drivers.vtep_schema import LS_TABLE, OWNER_KEY, ROW_TABLES, UCAST_REMOTE, Interpretation
from silonet.plan.intern import CompactSet, shared_set
from silonet.plan.ops import (
    Bind,
    EnsureLogicalSwitch,
    Operation,
    RemoveLogicalSwitch,
    RemoveRemoteMac,
    SetFloodList,
    SetRemoteMac,
    Unbind,
)


def _ref(row: Any) -> list:
    """A row in a raw operation: a row inserted by the same transaction goes by the name the IDL
    gives it there."""
    if row._data is None:
        return ["named-uuid", ovs.db.idl._uuid_name_from_uuid(row.uuid)]
    return ["uuid", str(row.uuid)]


def _insert_bindings(port: Any, pairs: dict[int, Any]) -> dict:
    """Bind free VLANs with an ``insert`` mutation, which never replaces a key another writer set
    meanwhile (the read-back sees that and the pass plans again). ``setkey`` would delete the key
    first, so it needs ``verify`` on the whole map, whose every binding went into every
    transaction: an attach cost O(bindings on the port)."""
    value = ["map", [[vlan, _ref(ls)] for vlan, ls in sorted(pairs.items())]]
    return {"op": "mutate", "table": "Physical_Port", "where": [["_uuid", "==", ["uuid", str(port.uuid)]]],
            "mutations": [["vlan_bindings", "insert", value]]}


class NewSwitch:
    """A Logical_Switch this transaction inserts as a raw operation, as the batch's other operations
    refer to it (by the name ``_ref`` gives it). The IDL's own insert and its five columns set
    through the library were a seventh of the manager's CPU in a 4,094-network apply; a switch
    that needs a row object (a remote MAC's column, a rebind's map key, a removal in the same
    batch: ``Write.row_vnis``) is inserted through the IDL instead."""

    __slots__ = ("uuid", "vni")
    _data = None  # not on the device yet: ``_ref`` names it, ``rows_of`` finds nothing on it

    def __init__(self, row_uuid: uuid.UUID, vni: int) -> None:
        self.uuid, self.vni = row_uuid, vni


class Write:
    """One batch's transaction and what its operations share: silonet's switch per VNI as the
    operations go, the plain VXLAN locators and locator sets, the rows on each switch, and the
    bindings of free VLANs (written together by ``finish``). Rows are read once until they
    change (``idl.meaning``): planning stays O(change), not O(device)."""

    __slots__ = ("_locators", "fresh", "idl", "ids", "inserts", "ls_rows", "mac_ips", "mac_rows", "made", "on_switch",
                 "ports", "reading", "refs", "rng", "row_vnis", "sets", "tables", "txn")

    def __init__(self, idl: MemoIdl, txn: Transaction, reading: Interpretation, ports: dict[str, Any],
                 rng: random.Random) -> None:
        self.idl, self.txn, self.reading, self.ports, self.rng = idl, txn, reading, ports, rng
        self.tables = t = idl.tables
        self.ls_rows = t[LS_TABLE].rows
        self._locators: dict[str, Any] | None = None  # ``locators``, made when first needed
        self.made: dict[int, Any] = {}  # VNI -> silonet's Logical_Switch row (None: none yet), as the ops go
        self.sets: dict[AbstractSet[str], list] | None = None  # flood list -> its locator set, as a raw reference
        self.refs: dict[str, list] = {}  # IP -> its locator, as a raw reference
        self.ids: dict[str, uuid.UUID | str] = {}  # IP -> its locator's UUID, or its name in this transaction
        self.mac_ips: set[str] = set()  # IPs the batch's remote MACs point at: their new locators are rows
        self.row_vnis: set[int] = set()  # VNIs whose new switch must be an IDL row (``NewSwitch``)
        self.on_switch: dict[tuple[str, uuid.UUID], list[Any]] = {}
        self.mac_rows: dict[uuid.UUID, dict[str, list[Any]]] = {}  # switch -> MAC (as read) -> its remote MAC rows
        self.fresh: dict[Any, dict[int, Any]] = {}  # port row -> VLAN -> switch row: bindings of free VLANs
        # rows of ``HELD`` tables inserted: (table, raw operation's index or IDL row's UUID, the row's
        # JSON, the flood list a set means, a set's locators by ``ids``)
        self.inserts: list[tuple[str, int | uuid.UUID, dict[str, Any], AbstractSet[str] | None,
                                 list[uuid.UUID | str] | None]] = []

    @property
    def locators(self) -> dict[str, Any]:
        """The plain VXLAN locators by IP, made when a write first needs one (a new flood list or
        remote MAC): a gateway flooding to 995 peers made it for every attach, ~0.12 ms each."""
        if self._locators is None:
            rows = self.tables["Physical_Locator"].rows
            self._locators = {ip: rows[u] for u, (ip, plain) in self.idl.view("Physical_Locator", locator).items()
                              if plain}
        return self._locators

    def provisional(self) -> uuid.UUID:
        """A provisional row UUID from a seeded PRNG: ``uuid4()`` reads the kernel's random source
        per row, which was 15 % of a 12,000-operation transaction here."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def insert(self, table: str) -> Any:
        return self.txn.insert(self.tables[table], new_uuid=self.provisional())

    def switch(self, vni: int) -> Any:
        made = self.made
        if vni not in made:
            sid = self.reading.owner_of(vni)
            made[vni] = None if sid is None else self.ls_rows.get(sid)
        return made[vni]

    def locator(self, ip: str) -> Any:
        locators = self.locators
        if ip not in locators:
            row = self.insert("Physical_Locator")
            row.encapsulation_type = ENCAP
            row.dst_ip = ip
            locators[ip] = row
            self.inserts.append(("Physical_Locator", row.uuid, {"encapsulation_type": ENCAP, "dst_ip": ip}, None, None))
        return locators[ip]

    def add_insert(self, table: str, name: str, row: dict[str, Any], flood: AbstractSet[str] | None = None,
                   members: list[uuid.UUID | str] | None = None) -> list:
        """A raw insert into a ``HELD`` table, kept for ``landed``; its reference (raw JSON)."""
        self.inserts.append((table, len(self.txn._operations), row, flood, members))
        self.txn.add_op({"op": "insert", "table": table, "uuid-name": name, "row": row})
        return ["named-uuid", name]

    def landed(self, txn: Transaction) -> None:
        """As the device's answer to a successful commit is read (``Transaction.on_success``): the
        rows it inserted in ``HELD`` tables, into the replica (``MemoIdl.hold``), by the UUIDs the
        device gave them (the monitor does not send them)."""
        if not self.inserts:
            return
        named, ids, rows = {}, {}, []  # by each insert's name: the device's UUID as text, and as a UUID (made once)
        for table, key, row, flood, members in self.inserts:
            if isinstance(key, int):
                got, name = txn.inserted(key), txn._operations[key]["uuid-name"]
                real = None if got is None else uuid.UUID(got)  # checked by ``inserted`` (``held.uuid_text``)
            else:
                real = txn.get_insert_uuid(key)
                got, name = None if real is None else str(real), ovs.db.idl._uuid_name_from_uuid(key)
            if got is None:  # a device that says it inserted a row and names none: the rows that
                return  # refer to them are read, and what they refer to is fetched (``held``)
            named[name], ids[name] = got, real
            # as ``set_ips``: the compiler's flood lists are shared sets already (not made again)
            meaning = None if flood is None else (flood if type(flood) is CompactSet else shared_set(flood), True)
            rows.append((table, name, row, meaning, members))
        self.idl.hold([(table, ids[name], held.named(row, named) if members is None else
                        held.Members("locators", tuple(m if isinstance(m, uuid.UUID) else ids[m] for m in members)),
                        meaning) for table, name, row, meaning, members in rows], own=True)

    def locator_ref(self, ip: str) -> list:
        """A reference (raw JSON) to the plain VXLAN locator of ``ip``. A new one is a raw insert unless
        a remote MAC of the batch points at it (``mac_ips``: an IDL column takes a row, and one IP must
        not get two locators): the IDL's row and its two columns set through the library were a tenth
        of the manager's CPU in a converge, for rows only locator sets refer to."""
        refs = self.refs
        if ip not in refs:
            row = self.locators.get(ip)
            if row is not None or ip in self.mac_ips:
                row = self.locator(ip)
                refs[ip] = _ref(row)
                self.ids[ip] = row.uuid if row._data is not None else refs[ip][1]
            else:
                self.ids[ip] = name = f"silonet_loc{len(refs)}"
                refs[ip] = self.add_insert("Physical_Locator", name, {"encapsulation_type": ENCAP, "dst_ip": ip})
        return refs[ip]

    def locator_set(self, ips: AbstractSet[str]) -> list:
        """A reference (raw JSON) to the locator set of ``ips``. Locator sets are immutable and
        shared: one row per distinct flood list, so 4,000 logical switches flooding to the same
        peers cost one set, not 4,000. A new set is a raw insert: the IDL's own insert of a set of
        99 locators (a Datum built, encoded, then walked for row names) was a fifth of the CPU of a
        gateway's first write at 100 VNIs; the device's answer brings the row into the replica
        (``landed``). A set that cannot be read (a locator another writer added, not fetched yet)
        is not reused."""
        sets = self.sets
        if sets is None:
            sets = self.sets = {}
            for pls in self.tables["Physical_Locator_Set"].rows.values():
                try:
                    flood, plain = self.idl.meaning(pls, set_ips)
                except ConnectionError:
                    continue
                if plain and flood not in sets:
                    sets[flood] = _ref(pls)
        if ips not in sets:
            ref, ordered = self.locator_ref, sorted(ips)
            json_refs = [ref(ip) for ip in ordered]  # first: a new locator is named as it is inserted
            ids = self.ids
            sets[ips] = self.add_insert("Physical_Locator_Set", f"silonet_set{len(sets)}",
                                        {"locators": ["set", json_refs]}, ips, [ids[ip] for ip in ordered])
        return sets[ips]

    def rows_of(self, table: str, ls: Any) -> list[Any]:
        """Rows of ``table`` on ``ls``, from the interpretation's index (a live list: new rows
        are added to it). A switch this transaction makes has none on the device yet."""
        key = (table, ls.uuid)
        if key not in self.on_switch:
            rows = self.tables[table].rows
            self.on_switch[key] = [] if ls._data is None else [
                rows[u] for u in self.reading.rows_on(table, ls.uuid) if u in rows]
        return self.on_switch[key]

    def remote_macs_on(self, ls: Any) -> dict[str, list[Any]]:
        """The Ucast_Macs_Remote rows on ``ls`` by the MAC each reads as (the interpretation's
        reading: normalised, None when it is no MAC), once per switch and batch: finding each
        operation's row by a walk of the switch's rows made a write of 100,000 remote MACs
        (1,000 per VNI) take 257 s, and the device dropped the connection meanwhile."""
        index = self.mac_rows.get(ls.uuid)
        if index is None:
            index = self.mac_rows[ls.uuid] = {}
            meanings = self.reading.rows[UCAST_REMOTE]
            for r in self.rows_of(UCAST_REMOTE, ls):
                meaning = meanings.get(r.uuid)
                if meaning is not None and meaning[0] is not None:
                    index.setdefault(meaning[0], []).append(r)
        return index

    def new_row(self, table: str, ls: Any) -> Any:
        row = self.insert(table)
        row.logical_switch = ls
        self.rows_of(table, ls).append(row)
        return row

    def run(self, ops: list[Operation]) -> None:
        """Every operation's handler, in order, then the bindings of free VLANs."""
        self.mac_ips = {op.vtep_ip for op in ops if type(op) is SetRemoteMac}
        self.row_vnis = {op.vni for op in ops if type(op) in (SetRemoteMac, RemoveLogicalSwitch) or (
            type(op) is Bind and _ours(self, self.ports[op.port], op.vlan))}  # a rebind (``bind``)
        for op in ops:
            RUN_IDL[type(op)](self, op)
        for prow, pairs in self.fresh.items():
            self.txn.add_op(_insert_bindings(prow, pairs))

    def outrun(self) -> bool:
        """After a successful commit (and the read-back): another writer took a free VLAN first."""
        txn, m = self.txn, self.idl.meaning
        for prow, pairs in self.fresh.items():
            held = m(prow, port_rows).vlan_bindings
            for vlan, ls in pairs.items():
                if type(ls) is NewSwitch:  # the server named it: the bound switch must be one at its VNI
                    row = self.ls_rows.get(held.get(vlan))
                    if row is None or row.tunnel_key != [ls.vni] or row.other_config.get(OWNER_KEY) != "true":
                        return True
                elif held.get(vlan) != (txn.get_insert_uuid(ls.uuid) or ls.uuid):
                    return True
        return False


def device_epoch(ps: Any) -> int | None:
    """The lease epoch the Physical_Switch holds (``other_config``), if any and if readable."""
    if "other_config" not in ps._table.columns:
        return None
    return read_epoch(ps.other_config.get(EPOCH_KEY))


def fence(ps: Any, lease: Fence, gateway: str) -> None:
    """The device's half of the lease fence, in the batch's own transaction: refuse at once when
    the replica shows a higher epoch (``Fenced``); else ``verify`` the Physical_Switch's
    ``other_config`` (the IDL sends a ``wait``: the column must still be what this replica read)
    and set the key to this epoch when it holds a lower one or none. A successor's write moves the
    key, so a write built on a replica read before it fails its ``wait`` (TRY_AGAIN) and the
    re-read shows the higher epoch. An older hardware_vtep schema without that column cannot hold
    the key: the lease's clock fences alone there."""
    if "other_config" not in ps._table.columns:
        return
    held = device_epoch(ps)
    lease.check(gateway, held)
    ps.verify("other_config")
    # the Python IDL sends a verified column's ``wait`` only for rows the transaction holds; a key
    # already at this epoch is not written, so hold the row (as the C IDL's verify does)
    ps._idl.txn._txn_rows.setdefault(ps.uuid, ps)
    if held != lease.epoch:
        ps.setkey("other_config", EPOCH_KEY, str(lease.epoch))


def ensure_logical_switch(w: Write, op: EnsureLogicalSwitch) -> None:
    """may_exist: silonet's switch for the VNI, made if there is none; named either way."""
    vni, network = op.vni, op.network
    ls = w.switch(vni)
    if ls is None and vni not in w.row_vnis:
        ls = w.made[vni] = NewSwitch(w.provisional(), vni)
        row = {"name": network, "description": _description(network, vni), "tunnel_key": vni,
               "other_config": ["map", [[OWNER_KEY, "true"]]], "replication_mode": "source_node"}
        if "replication_mode" not in w.tables[LS_TABLE].columns:  # an older schema (before OVS 2.13)
            del row["replication_mode"]
        w.txn.add_op({"op": "insert", "table": LS_TABLE, "uuid-name": _ref(ls)[1], "row": row})
        return
    if ls is None:
        ls = w.made[vni] = w.insert(LS_TABLE)
        ls.tunnel_key = [vni]
        ls.other_config = {OWNER_KEY: "true"}
        ls.replication_mode = ["source_node"]
    ls.name = network
    ls.description = _description(network, vni)


def _description(network: str, vni: int) -> str:
    return f"silonet network {network} (VNI {vni})"


def set_flood_list(w: Write, op: SetFloodList) -> None:
    """One unknown-dst row with the flood list's locator set (none for an empty list), written as
    raw operations: the set is one (``Write.locator_set``), and it comes after the IDL's own."""
    flood = op.flood
    ls = w.switch(op.vni)
    current = [r for r in w.rows_of("Mcast_Macs_Remote", ls) if r.MAC == "unknown-dst"]
    for extra in current[1:]:
        extra.delete()
    if not flood:
        for r in current[:1]:
            r.delete()
        return
    ref = w.locator_set(flood)
    if current:
        w.txn.add_op({"op": "update", "table": "Mcast_Macs_Remote", "where": [["_uuid", "==", _ref(current[0])]],
                      "row": {"locator_set": ref}})
    else:
        w.txn.add_op({"op": "insert", "table": "Mcast_Macs_Remote",
                      "row": {"MAC": "unknown-dst", "logical_switch": _ref(ls), "locator_set": ref}})


def set_remote_mac(w: Write, op: SetRemoteMac) -> None:
    mac = op.mac
    ls = w.switch(op.vni)
    # a row read as this MAC (the read normalises: AA-BB-.. is aa:bb:..) is the one to update
    index = w.remote_macs_on(ls)
    found = index.get(mac)
    if found:
        row = found[0]
    else:
        row = w.new_row(UCAST_REMOTE, ls)
        index[mac] = [row]
    row.MAC = mac
    row.locator = w.locator(op.vtep_ip)


def remove_remote_mac(w: Write, op: RemoveRemoteMac) -> None:
    """if_exists: the rows read as this MAC, if any."""
    ls = w.switch(op.vni)
    if ls is None:
        return
    for r in w.remote_macs_on(ls).pop(op.mac, ()):
        r.delete()


def _ours(w: Write, prow: Any, vlan: int) -> bool | None:
    """Whether the port's VLAN is bound to one of silonet's switches as the replica stands now
    (None: unbound). The plan was made on the device as the pass read it; a device change read
    since (another writer bound the VLAN) must not be replaced or removed on the plan's word."""
    sid = w.idl.meaning(prow, port_rows).vlan_bindings.get(vlan)
    if sid is None:
        return None
    held = w.reading.switches.get(sid)
    return held is not None and held[2]


def bind(w: Write, op: Bind) -> None:
    """A rebind replaces silonet's own binding, unless it moved meanwhile (``verify``); a free VLAN,
    or one someone else bound since the pass read the device, goes by an insert mutation
    (``_insert_bindings``) once every operation ran: it never replaces a key, so the other
    writer's binding stays and ``outrun`` has the pass plan again (which then refuses it)."""
    prow = w.ports[op.port]
    vlan = op.vlan
    if _ours(w, prow, vlan):
        prow.verify("vlan_bindings")
        prow.setkey("vlan_bindings", vlan, w.switch(op.vni))
    else:
        w.fresh.setdefault(prow, {})[vlan] = w.switch(op.vni)


def unbind(w: Write, op: Unbind) -> None:
    """silonet's binding, removed unless it moved meanwhile (``verify``); a VLAN someone else bound
    since the pass read the device is left alone (the read-back shows it)."""
    prow = w.ports[op.port]
    if _ours(w, prow, op.vlan) is False:
        return
    prow.verify("vlan_bindings")
    prow.delkey("vlan_bindings", op.vlan)


def remove_logical_switch(w: Write, op: RemoveLogicalSwitch) -> None:
    """if_exists: silonet's switch for the VNI and every row on it."""
    ls = w.switch(op.vni)
    w.made[op.vni] = None
    if ls is None:
        return
    for table in ROW_TABLES:
        for r in w.rows_of(table, ls):
            r.delete()
    ls.delete()


RUN_IDL: dict[type, Callable[[Write, Any], None]] = {  # dispatch by the operation's type
    EnsureLogicalSwitch: ensure_logical_switch,
    SetFloodList: set_flood_list,
    SetRemoteMac: set_remote_mac,
    RemoveRemoteMac: remove_remote_mac,
    Bind: bind,
    Unbind: unbind,
    RemoveLogicalSwitch: remove_logical_switch,
}
