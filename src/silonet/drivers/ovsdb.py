"""The ``ovsdb`` driver: the hardware_vtep schema over OVSDB, with Open vSwitch's own IDL.

One persistent IDL per gateway, owned by one thread (the IDL is not thread-safe), like
ovsdbapp's connection but one per gateway instead of one per class. The schema is fetched
from the device. All operations of a pass go into one transaction; columns whose contents
decided the plan are ``verify()``-ed, so a concurrent writer makes the commit TRY_AGAIN and
the reconciler re-reads and re-plans instead of overwriting what it did not see.

Ownership: a Logical_Switch is silonet's when ``other_config:silonet_managed=true``; its
bindings, flood list and remote MACs are silonet's too. Everything else is foreign: read,
reported, never changed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import random
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.timeval
import ovs.vlog

from silonet.drivers import ovsjson, secrets
from silonet.drivers.base import ActualState, ApplyResult, Driver, Health
from silonet.drivers.untrusted import echo, shown
from silonet.drivers.untrusted import mac as read_mac
from silonet.drivers.vtep_schema import (
    LS_TABLE,
    MCAST_LOCAL,
    MCAST_REMOTE,
    OWNER_KEY,
    ROW_TABLES,
    UCAST_LOCAL,
    UCAST_REMOTE,
    Interpretation,
    PortRows,
)
from silonet.errors import DeviceError
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
from silonet.plan.state import Changes

DB_NAME = "hardware_vtep"
ENCAP = "vxlan_over_ipv4"
CONNECT_TIMEOUT_MS = 5000
PROBE_INTERVAL_MS = 30_000  # our echo to an idle device (5 s by default: 100 gateways, 20 wake-ups a second)
# While a write is outstanding, an echo goes out after this much silence and the connection is
# dropped after as much again: a cut link fails the write within 2 x 5 s of its start, not after
# the idle probe's 60 s (the IDL's own commit_block would even wait for the reconnect). A busy
# ovsdb-server answers the echo once done with the write: 16,376 operations in one write (4,094
# networks bound on two ports) took about 5 s end to end on a loaded 2-core machine, so the
# silence allowed grows by WRITE_PROBE_PER_OP_MS per operation (that write: 5 + 16 s).
WRITE_PROBE_MS = 5_000
WRITE_PROBE_PER_OP_MS = 1.0
RECONNECT_MAX_MS = 2_000  # between connection attempts; the library's 8 s would exceed the 5 s resync bound
COLUMNS = {  # what silonet reads or writes: replicating only these keeps big updates cheap
    "Physical_Switch": ["name", "ports", "switch_fault_status", "tunnel_ips"],
    "Physical_Port": ["name", "vlan_bindings", "port_fault_status"],
    "Logical_Switch": ["name", "description", "tunnel_key", "other_config", "replication_mode"],
    "Physical_Locator": ["encapsulation_type", "dst_ip", "tunnel_key"],
    "Physical_Locator_Set": ["locators"],
    "Mcast_Macs_Remote": ["MAC", "logical_switch", "locator_set"],
    "Mcast_Macs_Local": ["MAC", "logical_switch"],
    "Ucast_Macs_Remote": ["MAC", "logical_switch", "locator"],
    "Ucast_Macs_Local": ["MAC", "logical_switch"],
}
Txn = ovs.db.idl.Transaction
_RNG = random.Random(os.urandom(16))  # provisional row UUIDs only: the server assigns the real ones



def _quiet_vlog() -> None:
    """The OVS library logs through ``ovs.vlog``; keep it off the console unless asked."""
    ovs.vlog.Vlog.set_levels_from_string("any:console:off")


_ssl_dir: str | None = None


def configure_ssl(gateway: Any) -> None:
    """``ssl:`` remotes: ``management.credentials`` (or SILONET_OVSDB_SSL_DIR) names a directory
    with key.pem, cert.pem and cacert.pem. The OVS library keeps one client identity per
    process, so every ssl: gateway of one manager must name the same directory."""
    global _ssl_dir
    ref = gateway.management.credentials or os.environ.get("SILONET_OVSDB_SSL_DIR")
    if not ref:
        raise DeviceError(gateway=gateway.name, reason="ssl: needs management.credentials = a directory with "
                                                       "key.pem, cert.pem and cacert.pem (or SILONET_OVSDB_SSL_DIR)")
    # a reference (from the API) only inside the secrets directory; the setting is the operator's
    path = secrets.fenced_path(ref, gateway.name) if gateway.management.credentials else Path(ref).expanduser()
    missing = [f for f in ("key.pem", "cert.pem", "cacert.pem") if not (path / f).is_file()]
    if missing:
        raise DeviceError(gateway=gateway.name, reason=f"ssl: {path} lacks {', '.join(missing)}")
    secrets.read_secret(path / "key.pem", gateway.name)  # no symlink, owner and mode checked
    if _ssl_dir not in (None, str(path)):
        raise DeviceError(gateway=gateway.name, reason=f"ssl: this manager already uses {_ssl_dir}; "
                                                       "one client identity per process")
    ovs.stream.Stream.ssl_set_private_key_file(str(path / "key.pem"))
    ovs.stream.Stream.ssl_set_certificate_file(str(path / "cert.pem"))
    ovs.stream.Stream.ssl_set_ca_cert_file(str(path / "cacert.pem"))
    _ssl_dir = str(path)


def fetch_schema(remote: str, timeout_ms: int = CONNECT_TIMEOUT_MS) -> ovs.db.idl.SchemaHelper:
    """Ask the device for its hardware_vtep schema (its version, not one shipped with us)."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), timeout_ms)
    if error:
        raise ConnectionError(f"cannot connect to {remote}: {os.strerror(error)}")
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        error, reply = rpc.transact_block(ovs.jsonrpc.Message.create_request("get_schema", [DB_NAME]))
    finally:
        rpc.close()
    if error:
        raise ConnectionError(f"get_schema from {remote}: {os.strerror(error)}")
    if reply.error:
        raise ConnectionError(f"get_schema from {remote}: {echo(reply.error)}")
    helper = ovs.db.idl.SchemaHelper(schema_json=reply.result)
    tables = reply.result.get("tables", {})
    for table, columns in COLUMNS.items():
        have = [c for c in columns if c in tables.get(table, {}).get("columns", {})]
        if have:
            helper.register_columns(table, have)
    return helper


def _opt(value: list) -> Any:
    return value[0] if value else None


def _port_rows(p: Any) -> PortRows:
    """The bindings straight from the replica's datum: the row attribute converts the whole map to
    row objects, and a port's map changes (and is read again) on every attach. Switches go by
    their ``uuid.UUID`` here: the IDL patches the datum in place, so a binding that did not
    change keeps its very object, which is how ``Interpretation.port`` skips it."""
    bindings = {k.value: v.value for k, v in p._data["vlan_bindings"].values.items()}
    return PortRows(p.name, list(p.port_fault_status), bindings)


def _ls_row(ls: Any) -> tuple[uuid.UUID, tuple[str, int | None, dict[str, str]]]:
    """Row id and (name, tunnel key, other_config)."""
    return ls.uuid, (ls.name, _opt(ls.tunnel_key), dict(ls.other_config))


def _mcast_row(r: Any) -> tuple[str, uuid.UUID, frozenset[str]]:
    return r.MAC, r.logical_switch.uuid, frozenset(loc.dst_ip for loc in r.locator_set.locators)


def _ucast_remote_row(r: Any) -> tuple[str, uuid.UUID, str]:
    return r.MAC, r.logical_switch.uuid, r.locator.dst_ip


def _vxlan_ip(loc: Any) -> str:
    """A plain VXLAN locator's IP ('' for any other kind: memo values must not be None)."""
    return loc.dst_ip if loc.encapsulation_type == ENCAP and not loc.tunnel_key else ""


def _vxlan_set(pls: Any) -> frozenset[str] | bool:
    """The IPs of a locator set made only of plain VXLAN locators (False otherwise)."""
    ips = [_vxlan_ip(loc) for loc in pls.locators]
    return frozenset(ips) if all(ips) else False


def _ucast_local_row(r: Any) -> tuple[str, uuid.UUID]:
    return r.MAC, r.logical_switch.uuid


READ = {LS_TABLE: _ls_row, MCAST_REMOTE: _mcast_row, UCAST_REMOTE: _ucast_remote_row,
        UCAST_LOCAL: _ucast_local_row, MCAST_LOCAL: _ucast_local_row}  # what a row means: the journaled tables


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


class _MemoIdl(ovs.db.idl.Idl):
    """An IDL that remembers what each row meant to silonet until the row changes.

    Reading a row through the OVS library converts every column on every access, which
    made a full read of a gateway with 200 logical switches cost ~20 ms; the IDL tells of
    every row it creates, updates or deletes (``notify``), so unchanged rows are read once.
    Whole tables are kept as views ({row uuid: meaning}) patched row by row, and what changed
    in the tables of ``READ`` is journaled as (row, old meaning, new meaning) for the driver's
    ``Interpretation``: a read or a plan after one attach costs the rows it touched.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo: dict[Any, Any] = {}
        self.views: dict[str, dict[uuid.UUID, Any]] = {}
        self.stale: dict[str, set[uuid.UUID]] = {}  # per view: rows changed since, read again on use
        self.journal: dict[str, list[tuple[uuid.UUID, Any, Any]]] = {t: [] for t in READ}
        self.epoch = 0  # moves when views and journal start over: an interpretation of before is void

    def notify(self, event: str, row: Any, updates: Any = None) -> None:
        self.memo.pop(row.uuid, None)
        stale = self.stale.get(row._table.name)
        if stale is not None:  # read later: rows it refers to may arrive later in the same update
            stale.add(row.uuid)

    def _Idl__clear(self) -> None:  # the library's private name: its tables emptied
        """The library empties its tables without telling (a server that lost our history): so
        must every view, the journal and the driver's interpretation."""
        super()._Idl__clear()  # type: ignore[misc]
        self.forget()

    def forget(self) -> None:
        """A (re)connection may bring back rows without telling."""
        self.memo.clear()
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
        for u in stale:
            old = view.pop(u, None)
            r = rows.get(u)
            new = read(r) if r is not None and r._data is not None else None
            if new is not None:
                view[u] = new
            if journal is not None and old != new:
                journal.append((u, old, new))
        stale.clear()
        return view


class _IdlThread(threading.Thread):
    """Owns one IDL; runs submitted functions on it between ``idl.run()`` calls."""

    def __init__(self, remote: str, on_change: Callable[[], None]) -> None:
        super().__init__(daemon=True, name=f"ovsdb {remote}")
        self.remote = remote
        self.on_change = on_change
        self.idl: _MemoIdl | None = None
        self.error = "connecting"
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._halt = threading.Event()

    @property
    def connected(self) -> bool:
        """Connected and monitoring: after a reconnect, the replica holds the rows of before
        until the server's answer arrives, and a pass must not take them for the device's."""
        idl = self.idl
        return (idl is not None and idl.has_ever_connected() and idl._session.is_connected()
                and idl.state == idl.IDL_S_MONITORING)

    def submit(self, fn: Callable[[ovs.db.idl.Idl], Any]) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        self._wake()
        return fut

    def stop(self) -> None:
        self._halt.set()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wfd, b"x")

    def run(self) -> None:
        backoff = 0.25
        while not self._halt.is_set() and self.idl is None:
            try:
                helper = fetch_schema(self.remote)
                self.idl = _MemoIdl(self.remote, helper, probe_interval=PROBE_INTERVAL_MS, leader_only=False)
                self.idl._session.reconnect.set_backoff(1000, RECONNECT_MAX_MS)
                self.error = ""
            except Exception as err:
                self.error = echo(err)  # any tcp:/unix: peer's words reach the gateway's status
                self._fail_jobs()
                self._halt.wait(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_MS / 1000)
        last: tuple[int, bool] | None = None
        while not self._halt.is_set():
            assert self.idl is not None
            self.idl.run()
            last = self._note(last)
            self._run_jobs()
            last = self._note(last)  # a job may have dropped the connection (a write left unanswered)
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.fd_wait(self._rfd, ovs.poller.POLLIN)
            poller.block()
            try:
                while os.read(self._rfd, 512):
                    pass
            except BlockingIOError:
                pass
        self._fail_jobs()
        if self.idl is not None:
            self.idl.close()
        os.close(self._rfd)
        os.close(self._wfd)

    def _note(self, last: tuple[int, bool] | None) -> tuple[int, bool]:
        """Tell of a changed replica or connection; keeps the reason a job gave for dropping it."""
        assert self.idl is not None
        now = (self.idl.change_seqno, self.connected)
        if now != last:
            if last is None or now[1] != last[1]:
                self.idl.forget()
            self.error = "" if now[1] else self.error or f"disconnected from {self.remote}"
            self.on_change()
        return now

    def _fail_jobs(self) -> None:
        while not self._jobs.empty():
            _fn, fut = self._jobs.get_nowait()
            if fut.set_running_or_notify_cancel():
                fut.set_exception(ConnectionError(self.error or "connection closed"))

    def _run_jobs(self) -> None:
        while not self._jobs.empty():
            fn, fut = self._jobs.get_nowait()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(self.idl))
            except BaseException as err:
                fut.set_exception(err)


class OvsdbDriver(Driver):
    """hardware_vtep over OVSDB (ovs-vtep, and switches that export the schema)."""

    name = "ovsdb"
    notifies = True  # the IDL's monitor pushes every change

    def __init__(self, gateway: Any, on_change: Callable[[], None]) -> None:
        super().__init__(gateway, on_change)
        _quiet_vlog()
        ovsjson.enable()  # idempotent: the OVS library's C JSON parser, loaded when a driver first needs it
        self._thread = _IdlThread(gateway.management.address, on_change)
        self._config_error: str | None = None
        self._cached: tuple[int, ActualState] | None = None  # (IDL change_seqno, what it meant)
        self._reading: tuple[int, Interpretation] | None = None  # (IDL epoch, the rows as they stand)

    async def start(self) -> None:
        if self.gateway.management.address.startswith("ssl:"):
            try:
                configure_ssl(self.gateway)
            except DeviceError as err:
                self._config_error = err.fields["reason"]
                return
        self._thread.start()

    def health(self) -> Health:
        t = self._thread
        if self._config_error:
            return Health(connected=False, detail=self._config_error)
        return Health(connected=t.connected, detail="" if t.connected else t.error or "connecting")

    async def _call(self, fn: Callable[[ovs.db.idl.Idl], Any]) -> Any:
        if not self._thread.connected:
            raise DeviceError(gateway=self.gateway.name, reason=self.health().detail or "not connected")
        try:
            return await asyncio.wrap_future(self._thread.submit(fn))
        except ConnectionError as err:
            raise DeviceError(gateway=self.gateway.name, reason=str(err)) from None

    def unchanged(self) -> bool:
        idl, cached = self._thread.idl, self._cached
        return self._thread.connected and idl is not None and cached is not None and cached[0] == idl.change_seqno

    async def read(self) -> ActualState:
        cached = self._cached
        if cached is not None and self.unchanged():
            return cached[1]  # the replica did not move since: no trip to the IDL thread
        return await self._call(self._read)

    async def apply(self, ops: list[Operation]) -> ApplyResult:
        if not ops:
            return ApplyResult(0)
        return await self._call(lambda idl: self._apply(idl, ops))

    async def close(self) -> None:
        if self._thread.is_alive():
            self._thread.stop()
            await asyncio.to_thread(self._thread.join, 5)

    # ------------------------------------------------------------ in the IDL thread
    def _switch(self, idl: ovs.db.idl.Idl) -> Any:
        switches = list(idl.tables["Physical_Switch"].rows.values())
        named = [ps for ps in switches if ps.name == self.gateway.name]
        if named:
            return named[0]
        if len(switches) == 1:
            ps = switches[0]
            if self.gateway.vtep_ip in ps.tunnel_ips:
                return ps
            # Another gateway's device (a wrong address, two gateways on one device): two
            # managers of one device would undo each other forever. Refuse.
            raise DeviceError(gateway=self.gateway.name, reason=(
                f"the device at {self.gateway.management.address} is Physical_Switch {shown(ps.name)} with tunnel IPs "
                f"{echo(', '.join(sorted(ps.tunnel_ips))) or 'none'}, not this gateway ({self.gateway.vtep_ip}): "
                "check management.address, or name the Physical_Switch after the gateway"))
        names = echo(", ".join(sorted(ps.name for ps in switches))) or "none"
        raise DeviceError(gateway=self.gateway.name,
                          reason=f"cannot tell which Physical_Switch is this gateway (found: {names})")

    def _read(self, idl: ovs.db.idl.Idl) -> ActualState:
        """The replica as silonet sees it; unchanged replica (same ``change_seqno``), same answer."""
        if self._cached is not None and self._cached[0] == idl.change_seqno:
            return self._cached[1]
        state = self._interpret(idl)
        self._cached = (idl.change_seqno, state)
        return state

    def _interpret(self, idl: _MemoIdl) -> ActualState:
        ps, reading = self._reading_now(idl)
        return ActualState(*reading.state(list(ps.switch_fault_status)), version=(reading.serial, reading.version))

    def changes_since(self, version: tuple[int, int] | None) -> Changes | None:
        reading = self._reading
        return None if reading is None else reading[1].changes_since(version)

    def _reading_now(self, idl: _MemoIdl) -> tuple[Any, Interpretation]:
        """This gateway's Physical_Switch, and the interpretation brought up to the replica by the
        rows that changed since (after a reconnect, by all of them)."""
        if self._reading is None or self._reading[0] != idl.epoch:
            self._reading = (idl.epoch, Interpretation())
        reading = self._reading[1]
        for table, read in READ.items():
            idl.view(table, read)
            for key, old, new in idl.drain(table):
                reading.row(table, key, old, new)
        ps = self._switch(idl)
        ports = {p.name: idl.meaning(p, _port_rows) for p in ps.ports}
        for name in reading.ports.keys() - ports.keys():
            reading.port(name, None)
        for name, rows in ports.items():
            reading.port(name, rows)
        return ps, reading

    def _apply(self, idl: _MemoIdl, ops: list[Operation]) -> ApplyResult:
        txn = Txn(idl)
        try:
            return self._write(idl, txn, ops)
        except BaseException:
            if idl.txn is txn:  # else the IDL keeps it open, and its next run() fails an assertion for good
                txn.abort()
            raise

    def _write(self, idl: _MemoIdl, txn: Txn, ops: list[Operation]) -> ApplyResult:
        t = idl.tables
        ps, reading = self._reading_now(idl)
        ports = {p.name: p for p in ps.ports}

        def insert(table: str) -> Any:
            """A row with a provisional UUID from a seeded PRNG: ``uuid4()`` reads the kernel's
            random source per row, which was 15 % of a 12,000-operation transaction here."""
            return txn.insert(t[table], new_uuid=uuid.UUID(int=_RNG.getrandbits(128), version=4))

        m = idl.meaning  # rows read once until they change: planning stays O(change), not O(device)
        ls_rows, loc_rows = t[LS_TABLE].rows, t["Physical_Locator"].rows
        locators = {ip: loc_rows[u] for u, ip in idl.view("Physical_Locator", _vxlan_ip).items() if ip}
        made: dict[int, Any] = {}  # VNI -> silonet's Logical_Switch row (None: none yet), as the ops go

        def switch(vni: int) -> Any:
            if vni not in made:
                sid = reading.owner_of(vni)
                made[vni] = None if sid is None else ls_rows.get(sid)
            return made[vni]

        def locator(ip: str) -> Any:
            if ip not in locators:
                row = insert("Physical_Locator")
                row.encapsulation_type = ENCAP
                row.dst_ip = ip
                locators[ip] = row
            return locators[ip]

        sets: dict[frozenset[str], Any] | None = None

        def locator_set(ips: frozenset[str]) -> Any:
            """Locator sets are immutable and shared: one row per distinct flood list, so 4,000
            logical switches flooding to the same peers cost one set, not 4,000."""
            nonlocal sets
            if sets is None:
                sets = {}
                for pls in t["Physical_Locator_Set"].rows.values():
                    held = m(pls, _vxlan_set)
                    if held is not False:
                        sets.setdefault(held, pls)
            if ips not in sets:
                pls = insert("Physical_Locator_Set")
                pls.locators = [locator(ip) for ip in sorted(ips)]
                sets[ips] = pls
            return sets[ips]

        on_switch: dict[tuple[str, uuid.UUID], list[Any]] = {}
        fresh: dict[Any, dict[int, Any]] = {}  # port row -> VLAN -> switch row: bindings of free VLANs

        def rows_of(table: str, ls: Any) -> list[Any]:
            """Rows of ``table`` on ``ls``, from the interpretation's index (a live list: new rows
            are added to it). A switch this transaction makes has none on the device yet."""
            key = (table, ls.uuid)
            if key not in on_switch:
                rows = t[table].rows
                on_switch[key] = [] if ls._data is None else [
                    rows[u] for u in reading.rows_on(table, ls.uuid) if u in rows]
            return on_switch[key]

        def new_row(table: str, ls: Any) -> Any:
            row = insert(table)
            row.logical_switch = ls
            rows_of(table, ls).append(row)
            return row

        for op in ops:
            match op:
                case EnsureLogicalSwitch(vni=vni, network=network):
                    ls = switch(vni)
                    if ls is None:
                        ls = made[vni] = insert(LS_TABLE)
                        ls.tunnel_key = [vni]
                        ls.other_config = {OWNER_KEY: "true"}
                        ls.replication_mode = ["source_node"]
                    ls.name = network
                    ls.description = f"silonet network {network} (VNI {vni})"
                case SetFloodList(vni=vni, flood=flood):
                    ls = switch(vni)
                    current = [r for r in rows_of("Mcast_Macs_Remote", ls) if r.MAC == "unknown-dst"]
                    for extra in current[1:]:
                        extra.delete()
                    if not flood:
                        for r in current[:1]:
                            r.delete()
                        continue
                    row = current[0] if current else new_row("Mcast_Macs_Remote", ls)
                    row.MAC = "unknown-dst"
                    row.locator_set = locator_set(flood)
                case SetRemoteMac(vni=vni, mac=mac, vtep_ip=ip):
                    ls = switch(vni)
                    # a row read as this MAC (the read normalises: AA-BB-.. is aa:bb:..) is the one to update
                    found = [r for r in rows_of("Ucast_Macs_Remote", ls) if read_mac(r.MAC) == mac]
                    row = found[0] if found else new_row("Ucast_Macs_Remote", ls)
                    row.MAC = mac
                    row.locator = locator(ip)
                case RemoveRemoteMac(vni=vni, mac=mac):
                    for r in rows_of("Ucast_Macs_Remote", switch(vni)):
                        if read_mac(r.MAC) == mac:
                            r.delete()
                case Bind(port=port, vlan=vlan, vni=vni):
                    prow = ports[port]
                    if vlan in m(prow, _port_rows).vlan_bindings:  # a rebind: replace, unless it moved meanwhile
                        prow.verify("vlan_bindings")
                        prow.setkey("vlan_bindings", vlan, switch(vni))
                    else:
                        fresh.setdefault(prow, {})[vlan] = switch(vni)
                case Unbind(port=port, vlan=vlan):
                    prow = ports[port]
                    prow.verify("vlan_bindings")
                    prow.delkey("vlan_bindings", vlan)
                case RemoveLogicalSwitch(vni=vni):
                    ls = switch(vni)
                    made[vni] = None
                    for table in ROW_TABLES:
                        for r in rows_of(table, ls):
                            r.delete()
                    ls.delete()
        for prow, pairs in fresh.items():
            txn.add_op(_insert_bindings(prow, pairs))
        status = self._commit(idl, txn, len(ops))
        if status in (Txn.SUCCESS, Txn.UNCHANGED):
            self._read(idl)  # the read-back, in the same trip: the next read() finds it cached
            for prow, pairs in fresh.items():
                held = m(prow, _port_rows).vlan_bindings
                if any(held.get(vlan) != (txn.get_insert_uuid(ls.uuid) or ls.uuid) for vlan, ls in pairs.items()):
                    return ApplyResult(0, retry=True)  # another writer took the VLAN first: plan again
            return ApplyResult(len(ops))
        if status == Txn.TRY_AGAIN:
            return ApplyResult(0, retry=True)
        raise DeviceError(gateway=self.gateway.name, reason=f"transaction {status}: {echo(txn.get_error())}")

    def _commit(self, idl: _MemoIdl, txn: Txn, size: int) -> str:
        """``txn.commit_block()``, except that a device which stops answering ends the write: the
        IDL's probe drops the connection (WRITE_PROBE_MS), and the pass fails with that reason
        instead of waiting for a reconnect. Whether the write landed, the next read tells."""
        reconnect = idl._session.reconnect
        reconnect.activity(ovs.timeval.msec())  # the silence that counts starts with the write
        probe = int(WRITE_PROBE_MS + WRITE_PROBE_PER_OP_MS * size)
        reconnect.set_probe_interval(probe)
        try:
            while (status := txn.commit()) == Txn.INCOMPLETE:
                idl.run()
                if not idl._session.is_connected():
                    self._thread.error = (f"lost the connection to {self.gateway.management.address} during a write "
                                          f"(closed, or no answer for {probe / 1000:g} s): reconnecting")
                    raise DeviceError(gateway=self.gateway.name, reason=self._thread.error)
                poller = ovs.poller.Poller()
                idl.wait(poller)
                txn.wait(poller)
                poller.block()
        finally:
            reconnect.set_probe_interval(PROBE_INTERVAL_MS)
        return status


DRIVER = OvsdbDriver
