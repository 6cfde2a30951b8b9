"""What a hardware_vtep database means to silonet, whoever read it.

The ``ovsdb`` driver reads the tables through the OVS IDL, the ``vtepctl`` dialect through
``vtep-ctl --format=json`` over SSH; both hand the rows here, so the reading of ownership,
bindings, flood lists, MACs and faults exists once (``Interpretation``), and so does the check of
what the rows say (``silonet.drivers.untrusted``): a MAC that is not a MAC, a locator IP that is
not an IPv4 address, a switch marked silonet's under a name silonet could not have written, is a
fault of the gateway and never silonet's state. The IDL tells which
rows changed, so the ``ovsdb`` driver keeps one ``Interpretation`` up to date row by row: a
read after an attach costs the rows the attach touched, not every row of the device.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from silonet.drivers.untrusted import FAULTS, all_ipv4, ipv4, is_mac, is_token, mac, owned_name, shown, vni_ok
from silonet.model.rules import VLAN_MAX
from silonet.plan.intern import CompactSet, shared_set
from silonet.plan.ownership import DeviceFacts
from silonet.plan.state import Changes, GatewayState, LogicalSwitch, MacTable, new_logical_switch

OWNER_KEY = "silonet_managed"  # other_config key on the Logical_Switch rows silonet made


@dataclass(frozen=True)
class PortRows:
    name: str
    faults: list[str]
    vlan_bindings: dict[int, Hashable]  # VLAN -> logical switch id


@dataclass(frozen=True)
class VtepRows:
    """The rows of one physical switch's view, with row ids as plain strings."""

    switch_faults: list[str]
    ports: list[PortRows]
    logical_switches: dict[str, tuple[str, int | None, dict[str, str]]]  # id -> name, tunnel key, other_config
    mcast_remote: list[tuple[str, str, Collection[str]]] = field(default_factory=list)  # MAC, switch id, locator IPs
    ucast_remote: list[tuple[str, str, str]] = field(default_factory=list)  # MAC, switch id, locator IP
    ucast_local: list[tuple[str, str]] = field(default_factory=list)  # MAC, switch id


LS_TABLE = "Logical_Switch"
PORT_TABLE = "Physical_Port"
CHANGE_LOG = 256  # reads remembered by ``changes_since``: a worker is never that many behind
_serials = itertools.count(1)

MCAST_REMOTE, UCAST_REMOTE, UCAST_LOCAL, MCAST_LOCAL = (
    "Mcast_Macs_Remote", "Ucast_Macs_Remote", "Ucast_Macs_Local", "Mcast_Macs_Local")
ROW_TABLES = (MCAST_REMOTE, UCAST_REMOTE, UCAST_LOCAL, MCAST_LOCAL)  # rows on one logical switch: [1] is its id


class Members(dict):
    """key -> its members: a tuple while they are few (almost always one: a VNI's switch, a switch's
    flood row, a switch's binding), a set beyond SMALL. A set of one is 216 bytes, a tuple of one 48:
    as sets they were 120 MiB of the serve's ~900 at 1,000 gateways of 100 VNIs (~60 MiB less now)."""

    __slots__ = ()
    SMALL = 8

    def add(self, key: Hashable, member: Hashable) -> None:
        held = self.get(key)
        if held is None:
            self[key] = (member,)
        elif type(held) is tuple:
            if member not in held:
                self[key] = (*held, member) if len(held) < self.SMALL else {*held, member}
        else:
            held.add(member)

    def discard(self, key: Hashable, member: Hashable) -> None:
        held = self.get(key)
        if held is None:
            return
        if type(held) is tuple:
            rest = tuple(m for m in held if m != member)
            if len(rest) == len(held):
                return
        else:
            held.discard(member)
            rest = held
        if rest:
            self[key] = rest
        else:
            del self[key]


class Interpretation:
    """``interpret`` kept up to date one changed row at a time.

    Rows are told as (table, row key, old meaning, new meaning): (id, (name, tunnel key,
    other_config)) for logical switches, (MAC, switch id, ...) for the MAC tables (see
    ``VtepRows``); ports as their ``PortRows``. Ids are any hashable (the IDL's UUIDs, text).
    Changes mark the VNIs and (port, VLAN) keys they touch; ``state()`` recomputes only those.
    Where a broken device holds two rows for one thing (two owned switches with one tunnel key,
    two flood rows on one switch), the smallest row id wins, whatever the order rows came in.

    Each ``state()`` that found changes is a new ``version``; ``changes_since(version)`` tells
    what the reads since then changed, so a reconcile pass need only look at that.

    Every row is checked as it is told (``_checked``): a value that fails is kept out of the state
    (a row keeps its place in ``rows_on``, so removing its switch still removes it) and described
    under ``FAULTS`` for as long as the row holds it.
    """

    def __init__(self) -> None:
        self.serial = next(_serials)
        self.version = 0
        self._log: deque[tuple[int, frozenset[int], frozenset[tuple[str, int]], bool]] = deque(maxlen=CHANGE_LOG)
        self._log_lock = threading.Lock()  # the driver's thread writes, a worker reads
        self._facts_dirty = True
        self._facts: DeviceFacts | None = None
        self.switches: dict[Hashable, tuple[str, int | None, bool]] = {}  # id -> name, key, silonet's
        self.owned_by_key: Members = Members()  # VNI -> ids of the switches with that tunnel key
        self.foreign_by_key: Members = Members()
        self.foreign_names: Counter[str] = Counter()
        self.rows: dict[str, dict[Hashable, tuple]] = {t: {} for t in ROW_TABLES}  # table -> row -> meaning
        self.on_switch: dict[str, Members] = {t: Members() for t in ROW_TABLES}  # table -> id -> rows
        self.ports: dict[str, PortRows] = {}
        self._told_ports: dict[str, PortRows] = {}  # as the reader gave them (``ports``: as checked)
        self._bad: dict[tuple[str, Hashable], list[str]] = {}  # (table, row) -> what is wrong with it
        self.bound_to: Members = Members()  # switch id -> (port, VLAN) bound to it
        self._dirty_vnis: set[int] = set()
        self._dirty_switches: set[Hashable] = set()
        self._dirty_bindings: set[tuple[str, int]] = set()
        # what state() hands out, patched
        self._ls: dict[int, LogicalSwitch] = {}
        self._bindings: dict[tuple[str, int], int] = {}
        self._foreign_bindings: dict[tuple[str, int], str] = {}
        self._foreign_vnis: dict[int, str] = {}
        self._remote: dict[int, dict[str, str]] = {}  # VNI -> {MAC: IP}: a part is replaced, never changed
        self._local: dict[int, frozenset[str]] = {}
        self._out: tuple | None = None

    # ------------------------------------------------------------------ changes
    def row(self, table: str, key: Hashable, old: tuple | None, new: tuple | None) -> None:
        """A row of ``table`` appeared (old None), changed, or went (new None)."""
        if table == LS_TABLE:
            self._switch(old, new)
            return
        rows, index = self.rows[table], self.on_switch[table]
        if old is not None:
            self._bad.pop((table, key), None)
            rows.pop(key, None)
            index.discard(old[1], key)
            self._dirty_switches.add(old[1])
        if new is not None:
            new = self._checked(table, key, new)
            rows[key] = new
            index.add(new[1], key)
            self._dirty_switches.add(new[1])
        self._out = None

    def _checked(self, table: str, key: Hashable, meaning: tuple) -> tuple:
        """``meaning`` with each value that fails its check as None (flood IPs: left out); the very
        tuple when all pass. The MAC of a multicast row is a name ("unknown-dst"), not checked."""
        if table == UCAST_LOCAL:
            if is_mac(meaning[0]):
                return meaning
        elif table == UCAST_REMOTE:
            if is_mac(meaning[0]) and ipv4(meaning[2]) is not None:
                return meaning
        elif table != MCAST_REMOTE or meaning[0] != "unknown-dst" or all_ipv4(meaning[2]):
            return meaning
        why: list[str] = []
        if table in (UCAST_LOCAL, UCAST_REMOTE):
            address = mac(meaning[0])
            if address is None:
                why.append(f"{table} MAC {shown(meaning[0])} is not a MAC address; "
                           + ("not published to other gateways" if table == UCAST_LOCAL else "ignored"))
            if table == UCAST_LOCAL:
                if address is not meaning[0]:
                    meaning = (address, *meaning[1:])
            else:
                ip = ipv4(meaning[2])
                if ip is None:
                    why.append(f"{table} locator dst_ip {shown(meaning[2])} is not an IPv4 address; ignored")
                if address is not meaning[0] or ip is not meaning[2]:
                    meaning = (address, meaning[1], ip, *meaning[3:])
        elif table == MCAST_REMOTE and meaning[0] == "unknown-dst":
            bad = sorted((ip for ip in meaning[2] if ipv4(ip) is None), key=repr)
            if bad:
                why += [f"{table} locator dst_ip {shown(ip)} is not an IPv4 address; left out of the flood list"
                        for ip in bad]
                meaning = (meaning[0], meaning[1], frozenset(meaning[2]).difference(bad), *meaning[3:])
        if why:
            self._bad[(table, key)] = why
        return meaning

    def _claimed(self, meaning: tuple, now: bool) -> tuple[Hashable, str, int | None, bool]:
        """A logical switch row as (id, name, tunnel key, silonet's). One marked silonet's whose name
        silonet could not have written, or whose tunnel key is not a VNI, is someone else's (a fault
        while ``now``: the row as it stands)."""
        sid, (name, key, config) = meaning
        owned = config.get(OWNER_KEY) == "true"
        why: list[str] = []
        if key is not None and not vni_ok(key):
            why.append(f"tunnel_key {shown(key)} is not a VNI")
            key = None
        if owned and not owned_name(name):
            why.append(f"name {shown(name)} is not a name silonet writes")
        if owned and why:
            owned = False
            if now:
                self._bad[(LS_TABLE, sid)] = [f"{LS_TABLE} {', '.join(why)}, yet it is marked {OWNER_KEY}=true: "
                                              "taken for someone else's"]
        return sid, name, key, owned

    def _switch(self, old: tuple | None, new: tuple | None) -> None:
        for meaning, sign in ((old, -1), (new, 1)):
            if meaning is None:
                continue
            if sign < 0:
                self._bad.pop((LS_TABLE, meaning[0]), None)
            sid, name, key, owned = self._claimed(meaning, sign > 0)
            if sign < 0:
                self.switches.pop(sid, None)
            else:
                self.switches[sid] = (name, key, owned)
            if not owned:
                self._facts_dirty = True
                self.foreign_names[name] += sign
                if self.foreign_names[name] <= 0:
                    del self.foreign_names[name]
            if key is not None:
                by_key = self.owned_by_key if owned else self.foreign_by_key
                if sign < 0:
                    by_key.discard(key, sid)
                else:
                    by_key.add(key, sid)
                self._dirty_vnis.add(key)
            self._dirty_bindings.update(self.bound_to.get(sid, ()))
        self._out = None

    def port(self, name: str, rows: PortRows | None) -> None:
        """A port as it is now (None: gone)."""
        if self._told_ports.get(name) is rows:
            return
        if rows is None:
            self._told_ports.pop(name, None)
        else:
            self._told_ports[name] = rows
        self._bad.pop((PORT_TABLE, name), None)
        if rows is not None:
            rows = self._checked_port(name, rows)
        old = self.ports.get(name)
        if old is rows:
            return
        before = old.vlan_bindings if old is not None else {}
        after = rows.vlan_bindings if rows is not None else {}
        # By identity: a binding the reader did not touch is the same object (for text ids from a
        # fresh parse every binding counts as changed, which is merely a full recompute).
        gone = [(vlan, sid) for vlan, sid in before.items() if after.get(vlan) is not sid]
        new = [(vlan, sid) for vlan, sid in after.items() if before.get(vlan) is not sid]
        for vlan, sid in gone:
            self.bound_to.discard(sid, (name, vlan))
            self._dirty_bindings.add((name, vlan))
        for vlan, sid in new:
            self.bound_to.add(sid, (name, vlan))
            self._dirty_bindings.add((name, vlan))
        if (old is None) != (rows is None):
            self._facts_dirty = True
        if rows is None:
            self.ports.pop(name, None)
        else:
            self.ports[name] = rows
        self._out = None

    def _checked_port(self, name: str, rows: PortRows) -> PortRows | None:
        """The port with what fails its check left out (a name that is not a plain token: the whole
        port, which no inventory can name); the very object when all passes."""
        if not is_token(name):
            self._bad[(PORT_TABLE, name)] = [f"{PORT_TABLE} name {shown(name)} is not a plain name; "
                                             "its bindings are ignored"]
            return None
        bad = [vlan for vlan in rows.vlan_bindings if type(vlan) is not int or not 0 <= vlan <= VLAN_MAX + 1]
        if not bad:
            return rows
        self._bad[(PORT_TABLE, name)] = [f"{PORT_TABLE} {shown(name)} vlan_bindings key {shown(vlan)} is not a "
                                         "VLAN; ignored" for vlan in bad]
        return PortRows(rows.name, rows.faults, {v: s for v, s in rows.vlan_bindings.items() if v not in bad})

    def owner_of(self, vni: int) -> Any:
        """The id of silonet's logical switch for ``vni`` (the one ``state()`` reads)."""
        ids = self.owned_by_key.get(vni)
        return min(ids) if ids else None

    def rows_on(self, table: str, sid: Hashable) -> Iterable[Hashable]:
        return self.on_switch[table].get(sid, ())

    # -------------------------------------------------------------------- state
    def state(self, switch_faults: Collection[str] = ()) -> tuple[
            GatewayState, DeviceFacts, dict[int, frozenset[str]], dict[str, list[str]]]:
        """What ``interpret`` returns: silonet's state, the facts, the MACs learned here, the faults."""
        if self._out is None:
            vnis, bindings = self._settle()
            if self._facts_dirty or self._facts is None:  # the same object while the facts stand
                self._facts = DeviceFacts(frozenset(self.ports), dict(self._foreign_bindings),
                                          dict(self._foreign_vnis), frozenset(self.foreign_names))
            self._out = (GatewayState(dict(self._ls), dict(self._bindings), MacTable(dict(self._remote))), self._facts,
                         dict(self._local))
            with self._log_lock:
                self.version += 1
                self._log.append((self.version, vnis, bindings, self._facts_dirty))
            self._facts_dirty = False
        faults: dict[str, list[str]] = {}
        if switch_faults:
            faults["switch"] = sorted(switch_faults)
        for port in self.ports.values():
            if port.faults:
                faults[f"port {port.name}"] = sorted(port.faults)
        if self._bad:
            faults[FAULTS] = sorted(why for found in self._bad.values() for why in found)
        return (*self._out, faults)

    def changes_since(self, version: tuple[int, int] | None) -> Changes | None:
        """What the reads after ``version`` (this interpretation's ``(serial, version)``) changed;
        None when that is not known (another interpretation's, or too long ago)."""
        if version is None or version[0] != self.serial:
            return None
        with self._log_lock:
            if version[1] == self.version:
                return Changes()
            newer = [entry for entry in self._log if entry[0] > version[1]]
        if not newer or newer[0][0] != version[1] + 1:
            return None
        return Changes(frozenset().union(*(e[1] for e in newer)), frozenset().union(*(e[2] for e in newer)),
                       any(e[3] for e in newer))

    def _settle(self) -> tuple[frozenset[int], frozenset[tuple[str, int]]]:
        """Recompute what the marked VNIs and bindings mean now; returns what was marked."""
        switches = self.switches
        for sid in self._dirty_switches:
            held = switches.get(sid)
            if held is not None and held[1] is not None:
                self._dirty_vnis.add(held[1])
        self._dirty_switches.clear()
        for vni in self._dirty_vnis:
            self._vni(vni)
        vnis = frozenset(self._dirty_vnis)
        self._dirty_vnis.clear()
        for key in self._dirty_bindings:
            port = self.ports.get(key[0])
            sid = port.vlan_bindings.get(key[1]) if port is not None else None
            held = switches.get(sid) if sid is not None else None
            self._bindings.pop(key, None)
            was = self._foreign_bindings.pop(key, None)
            now = None
            if sid is not None:
                if held is not None and held[2] and held[1] is not None:
                    self._bindings[key] = held[1]
                else:
                    now = self._foreign_bindings[key] = held[0] if held is not None else str(sid)
            if now != was:
                self._facts_dirty = True
        bindings = frozenset(self._dirty_bindings)
        self._dirty_bindings.clear()
        return vnis, bindings

    def _vni(self, vni: int) -> None:
        self._remote.pop(vni, None)
        ids = self.owned_by_key.get(vni)
        foreign = self.foreign_by_key.get(vni)
        was = self._foreign_vnis.pop(vni, None)
        if foreign:
            self._foreign_vnis[vni] = self.switches[min(foreign)][0]
        if self._foreign_vnis.get(vni) != was:
            self._facts_dirty = True
        if not ids:
            self._ls.pop(vni, None)
            self._local.pop(vni, None)
            return
        flood = [(r, m) for sid in ids for r, m in self._on(MCAST_REMOTE, sid) if m[0] == "unknown-dst"]
        ips = _flood_list(min(flood, key=lambda rm: str(rm[0]))[1][2]) if flood else frozenset()
        self._ls[vni] = new_logical_switch(vni, self.switches[min(ids)][0], ips)
        remote: dict[str, tuple[str, str]] = {}
        for sid in ids:
            for r, (address, _sid, ip) in self._on(UCAST_REMOTE, sid):
                if address is None or ip is None:
                    continue
                seen = remote.get(address)
                if seen is None or str(r) < seen[0]:
                    remote[address] = (str(r), ip)
        if remote:  # a new part: the states handed out before keep theirs
            self._remote[vni] = {address: ip for address, (_r, ip) in remote.items()}
        local = frozenset(m[0] for sid in ids for _r, m in self._on(UCAST_LOCAL, sid) if m[0] is not None)
        if local:
            self._local[vni] = local
        else:
            self._local.pop(vni, None)

    def _on(self, table: str, sid: Hashable) -> Iterable[tuple[Hashable, tuple]]:
        rows = self.rows[table]
        return ((r, rows[r]) for r in self.on_switch[table].get(sid, ()))


def _flood_list(ips: Collection[str]) -> CompactSet | frozenset[str]:
    """A row's flood list as the state holds it: the replica's shared set itself (a copy of each
    would be 4 KiB more per VNI per gateway), a parsed text's list as a shared set."""
    return ips if isinstance(ips, CompactSet | frozenset) else shared_set(ips)


def interpret(rows: VtepRows) -> tuple[GatewayState, DeviceFacts, dict[int, frozenset[str]], dict[str, list[str]]]:
    """silonet's own state, the facts about everyone else's, the MACs learned here, the faults."""
    it = Interpretation()
    for sid, meaning in rows.logical_switches.items():
        it.row(LS_TABLE, sid, None, (sid, meaning))
    for table, found in ((MCAST_REMOTE, rows.mcast_remote), (UCAST_REMOTE, rows.ucast_remote),
                         (UCAST_LOCAL, rows.ucast_local)):
        for i, meaning in enumerate(found):
            it.row(table, i, None, meaning)
    for port in rows.ports:
        it.port(port.name, port)
    return it.state(rows.switch_faults)
