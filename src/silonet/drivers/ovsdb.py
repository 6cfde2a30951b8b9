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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.vlog

from silonet.drivers.base import ActualState, ApplyResult, Driver, Health
from silonet.drivers.vtep_schema import OWNER_KEY, PortRows, VtepRows, interpret
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

DB_NAME = "hardware_vtep"
ENCAP = "vxlan_over_ipv4"
CONNECT_TIMEOUT_MS = 5000
Txn = ovs.db.idl.Transaction


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
    path = Path(ref.removeprefix("file:")).expanduser()
    missing = [f for f in ("key.pem", "cert.pem", "cacert.pem") if not (path / f).is_file()]
    if missing:
        raise DeviceError(gateway=gateway.name, reason=f"ssl: {path} lacks {', '.join(missing)}")
    if (path / "key.pem").stat().st_mode & 0o077:
        raise DeviceError(gateway=gateway.name, reason=f"ssl: {path / 'key.pem'} must not be readable by others "
                                                       "(chmod 600)")
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
        raise ConnectionError(f"get_schema from {remote}: {reply.error}")
    helper = ovs.db.idl.SchemaHelper(schema_json=reply.result)
    helper.register_all()
    return helper


def _opt(value: list) -> Any:
    return value[0] if value else None


def _owned(ls: Any) -> bool:
    return ls.other_config.get(OWNER_KEY) == "true"


class _IdlThread(threading.Thread):
    """Owns one IDL; runs submitted functions on it between ``idl.run()`` calls."""

    def __init__(self, remote: str, on_change: Callable[[], None]) -> None:
        super().__init__(daemon=True, name=f"ovsdb {remote}")
        self.remote = remote
        self.on_change = on_change
        self.idl: ovs.db.idl.Idl | None = None
        self.error = "connecting"
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        self._halt = threading.Event()

    @property
    def connected(self) -> bool:
        idl = self.idl
        return idl is not None and idl.has_ever_connected() and idl._session.is_connected()

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
                self.idl = ovs.db.idl.Idl(self.remote, helper, leader_only=False)
                self.error = ""
            except Exception as err:
                self.error = str(err)
                self._fail_jobs()
                self._halt.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        last: tuple[int, bool] | None = None
        while not self._halt.is_set():
            assert self.idl is not None
            self.idl.run()
            now = (self.idl.change_seqno, self.connected)
            if now != last:
                last = now
                self.error = "" if now[1] else f"disconnected from {self.remote}"
                self.on_change()
            self._run_jobs()
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.fd_wait(self._rfd, ovs.poller.POLLIN)
            poller.timer_wait(2000)
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

    def __init__(self, gateway: Any, on_change: Callable[[], None]) -> None:
        super().__init__(gateway, on_change)
        _quiet_vlog()
        self._thread = _IdlThread(gateway.management.address, on_change)
        self._config_error: str | None = None

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

    async def read(self) -> ActualState:
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
            return switches[0]
        names = ", ".join(sorted(ps.name for ps in switches)) or "none"
        raise DeviceError(gateway=self.gateway.name,
                          reason=f"cannot tell which Physical_Switch is this gateway (found: {names})")

    def _read(self, idl: ovs.db.idl.Idl) -> ActualState:
        t = idl.tables
        ps = self._switch(idl)
        rows = VtepRows(
            switch_faults=list(ps.switch_fault_status),
            ports=[PortRows(p.name, list(p.port_fault_status),
                            {vlan: str(ls.uuid) for vlan, ls in p.vlan_bindings.items()}) for p in ps.ports],
            logical_switches={str(ls.uuid): (ls.name, _opt(ls.tunnel_key), dict(ls.other_config))
                              for ls in t["Logical_Switch"].rows.values()},
            mcast_remote=[(m.MAC, str(m.logical_switch.uuid), [loc.dst_ip for loc in m.locator_set.locators])
                          for m in t["Mcast_Macs_Remote"].rows.values()],
            ucast_remote=[(m.MAC, str(m.logical_switch.uuid), m.locator.dst_ip)
                          for m in t["Ucast_Macs_Remote"].rows.values()],
            ucast_local=[(m.MAC, str(m.logical_switch.uuid)) for m in t["Ucast_Macs_Local"].rows.values()],
        )
        return ActualState(*interpret(rows))

    def _apply(self, idl: ovs.db.idl.Idl, ops: list[Operation]) -> ApplyResult:
        t = idl.tables
        txn = Txn(idl)
        ps = self._switch(idl)
        ports = {p.name: p for p in ps.ports}
        switches = {_opt(ls.tunnel_key): ls for ls in t["Logical_Switch"].rows.values() if _owned(ls)}
        locators = {loc.dst_ip: loc for loc in t["Physical_Locator"].rows.values()
                    if loc.encapsulation_type == ENCAP and not loc.tunnel_key}

        def locator(ip: str) -> Any:
            if ip not in locators:
                row = txn.insert(t["Physical_Locator"])
                row.encapsulation_type = ENCAP
                row.dst_ip = ip
                locators[ip] = row
            return locators[ip]

        def rows_of(table: str, ls: Any) -> list[Any]:
            return [r for r in t[table].rows.values() if r.logical_switch.uuid == ls.uuid]

        for op in ops:
            match op:
                case EnsureLogicalSwitch(vni=vni, network=network):
                    ls = switches.get(vni)
                    if ls is None:
                        ls = switches[vni] = txn.insert(t["Logical_Switch"])
                        ls.tunnel_key = [vni]
                        ls.other_config = {OWNER_KEY: "true"}
                        ls.replication_mode = ["source_node"]
                    ls.name = network
                    ls.description = f"silonet network {network} (VNI {vni})"
                case SetFloodList(vni=vni, flood=flood):
                    ls = switches[vni]
                    current = [m for m in rows_of("Mcast_Macs_Remote", ls) if m.MAC == "unknown-dst"]
                    for extra in current[1:]:
                        extra.delete()
                    if not flood:
                        for m in current[:1]:
                            m.delete()
                        continue
                    pls = txn.insert(t["Physical_Locator_Set"])  # immutable: a new set per change
                    pls.locators = [locator(ip) for ip in sorted(flood)]
                    row = current[0] if current else txn.insert(t["Mcast_Macs_Remote"])
                    row.MAC = "unknown-dst"
                    row.logical_switch = ls
                    row.locator_set = pls
                case SetRemoteMac(vni=vni, mac=mac, vtep_ip=ip):
                    ls = switches[vni]
                    found = [m for m in rows_of("Ucast_Macs_Remote", ls) if m.MAC == mac]
                    row = found[0] if found else txn.insert(t["Ucast_Macs_Remote"])
                    row.MAC = mac
                    row.logical_switch = ls
                    row.locator = locator(ip)
                case RemoveRemoteMac(vni=vni, mac=mac):
                    for m in rows_of("Ucast_Macs_Remote", switches[vni]):
                        if m.MAC == mac:
                            m.delete()
                case Bind(port=port, vlan=vlan, vni=vni):
                    prow = ports[port]
                    prow.verify("vlan_bindings")
                    prow.setkey("vlan_bindings", vlan, switches[vni])
                case Unbind(port=port, vlan=vlan):
                    prow = ports[port]
                    prow.verify("vlan_bindings")
                    prow.delkey("vlan_bindings", vlan)
                case RemoveLogicalSwitch(vni=vni):
                    ls = switches.pop(vni)
                    for table in ("Mcast_Macs_Remote", "Ucast_Macs_Remote", "Ucast_Macs_Local", "Mcast_Macs_Local"):
                        for m in rows_of(table, ls):
                            m.delete()
                    ls.delete()
        status = txn.commit_block()
        if status in (Txn.SUCCESS, Txn.UNCHANGED):
            return ApplyResult(len(ops))
        if status == Txn.TRY_AGAIN:
            return ApplyResult(0, retry=True)
        raise DeviceError(gateway=self.gateway.name, reason=f"transaction {status}: {txn.get_error()}")


DRIVER = OvsdbDriver
