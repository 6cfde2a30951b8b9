"""One gateway's OVSDB connection: the IDL, the thread that owns it, reconnects, SSL, the write's commit.

The IDL is not thread-safe: one thread owns it and runs submitted functions on it between
``idl.run()`` calls, like ovsdbapp's connection but one per gateway instead of one per class.
The schema is fetched from the device. The thread tells of every change of the replica or of
the connection through ``on_change``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import os
import queue
import random
import select
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.timeval
import ovs.vlog

from silonet.drivers import secrets
from silonet.drivers.ovsdb.replica import MemoIdl
from silonet.drivers.untrusted import echo
from silonet.errors import DeviceError

DB_NAME = "hardware_vtep"
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
    "Physical_Switch": ["name", "ports", "switch_fault_status", "tunnel_ips", "other_config"],
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


def quiet_vlog() -> None:
    """The OVS library logs through ``ovs.vlog``; keep it off the console unless asked."""
    ovs.vlog.Vlog.set_levels_from_string("any:console:off")


def use_poll() -> None:
    """Make the OVS library wait with ``poll(2)``, not ``select(2)``.

    ``ovs.poller.Poller`` (every IDL wait, ``Stream.open_block``, ``transact_block``) builds its
    set from ``ovs.poller.SelectPoll``, which the library points at a ``select.select`` emulation
    kept for eventlet/gevent; ``select`` refuses descriptors of 1,024 and above, so a manager
    holding a few hundred gateways (a socket and a wake-up pipe each) lost every connection made
    after that ("filedescriptor out of range in select()"). The library's own comment names the
    remedy for programs without eventlet: point that slot at ``select.poll``. Idempotent; silonet
    never runs under eventlet or gevent (it would monkey-patch ``select.poll`` away, and then the
    emulation is what it needs)."""
    if not hasattr(select, "poll") or ovs.poller._using_eventlet_green_select():
        return
    ovs.poller.SelectPoll = Poll


class Poll:
    """``select.poll`` as the library's emulation behaves: a descriptor registered twice waits for
    both (``Idl.wait`` asks for POLLOUT, then POLLIN, on one socket while a write is half sent);
    ``select.poll.register`` would keep the second alone, and a transaction larger than the
    socket's buffer would wait for an answer to a request the device never fully received."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._events: dict[int, int] = {}

    def register(self, fd: Any, events: int) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._events[fd] = events = self._events.get(fd, 0) | events
        self._poll.register(fd, events)

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        return self._poll.poll(timeout)


def configure_ssl(gateway: Any) -> Path:
    """``ssl:`` remotes: ``management.credentials`` (or SILONET_OVSDB_SSL_DIR) names a directory
    with key.pem, cert.pem and cacert.pem. The OVS library keeps one client identity per
    process, so every ssl: gateway of one manager must name the same directory: the library's
    own setting is the record of which one (silonet keeps no copy). Returns the directory."""
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
    held = ovs.stream.Stream._SSL_private_key_file  # set only here, always to <directory>/key.pem
    if held not in (None, str(path / "key.pem")):
        raise DeviceError(gateway=gateway.name, reason=f"ssl: this manager already uses {Path(held).parent}; "
                                                       "one client identity per process")
    ovs.stream.Stream.ssl_set_private_key_file(str(path / "key.pem"))
    ovs.stream.Stream.ssl_set_certificate_file(str(path / "cert.pem"))
    ovs.stream.Stream.ssl_set_ca_cert_file(str(path / "cacert.pem"))
    return path


def fetch_schema(remote: str, timeout_ms: int = CONNECT_TIMEOUT_MS) -> ovs.db.idl.SchemaHelper:
    """Ask the device for its hardware_vtep schema (its version, not one shipped with us)."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), timeout_ms)
    if error:  # refused: nothing listens there, and retrying will not change that by itself
        kind = ConnectionRefusedError if error == errno.ECONNREFUSED else ConnectionError
        raise kind(f"cannot connect to {remote}: {os.strerror(error)}")
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


class IdlThread(threading.Thread):
    """Owns one IDL; runs submitted functions on it between ``idl.run()`` calls."""

    def __init__(self, remote: str, on_change: Callable[[], None]) -> None:
        super().__init__(daemon=True, name=f"ovsdb {remote}")
        self.remote = remote
        self.on_change = on_change
        self.idl: MemoIdl | None = None
        self.error = "connecting"
        self.hard = False  # the last first-connection attempt was refused (``Health.hard``)
        self.ssl_dir: Path | None = None  # the client identity an ssl: remote is given (use_ssl)
        # provisional row UUIDs of this IDL's transactions only: the server assigns the real ones
        self.rng = random.Random(os.urandom(16))
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

    def use_ssl(self, gateway: Any) -> None:
        """The client identity of ``gateway``'s ssl: remote (``configure_ssl``), before ``start()``."""
        self.ssl_dir = configure_ssl(gateway)

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
                self.idl = MemoIdl(self.remote, helper, probe_interval=PROBE_INTERVAL_MS, leader_only=False)
                self.idl._session.reconnect.set_backoff(1000, RECONNECT_MAX_MS)
                self.error, self.hard = "", False
            except Exception as err:
                self.error = echo(err)  # any tcp:/unix: peer's words reach the gateway's status
                self.hard = isinstance(err, ConnectionRefusedError)
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

    def commit(self, txn: Txn, size: int, gateway: str) -> str:
        """``txn.commit_block()``, except that a device which stops answering ends the write: the
        IDL's probe drops the connection (WRITE_PROBE_MS), and the pass fails with that reason
        instead of waiting for a reconnect. Whether the write landed, the next read tells.
        In this thread only (a submitted function)."""
        idl = self.idl
        assert idl is not None
        reconnect = idl._session.reconnect
        reconnect.activity(ovs.timeval.msec())  # the silence that counts starts with the write
        probe = int(WRITE_PROBE_MS + WRITE_PROBE_PER_OP_MS * size)
        reconnect.set_probe_interval(probe)
        try:
            while (status := txn.commit()) == Txn.INCOMPLETE:
                idl.run()
                if not idl._session.is_connected():
                    self.error = (f"lost the connection to {self.remote} during a write "
                                  f"(closed, or no answer for {probe / 1000:g} s): reconnecting")
                    raise DeviceError(gateway=gateway, reason=self.error)
                poller = ovs.poller.Poller()
                idl.wait(poller)
                txn.wait(poller)
                poller.block()
        finally:
            reconnect.set_probe_interval(PROBE_INTERVAL_MS)
        return status

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
