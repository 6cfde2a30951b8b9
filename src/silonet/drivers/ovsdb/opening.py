"""Opening a gateway's OVSDB connection: its client identity (``ssl:``), the device's schema with
the columns silonet replicates, and one request with a deadline (for the schema, and for readers
beside the IDL such as the bench's devices)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream
import ovs.timeval

from silonet.drivers import secrets
from silonet.drivers.ovsdb.compact import schema_of
from silonet.drivers.untrusted import echo
from silonet.errors import DeviceError

DB_NAME = "hardware_vtep"
CONNECT_TIMEOUT_MS = 5000
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
    current = ovs.stream.Stream._SSL_private_key_file  # set only here, always to <directory>/key.pem
    if current not in (None, str(path / "key.pem")):
        raise DeviceError(gateway=gateway.name, reason=f"ssl: this manager already uses {Path(current).parent}; "
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
        error, reply = transact(rpc, ovs.jsonrpc.Message.create_request("get_schema", [DB_NAME]), timeout_ms)
    finally:
        rpc.close()
    if error:
        raise ConnectionError(f"get_schema from {remote}: {os.strerror(error)}")
    if reply.error:
        raise ConnectionError(f"get_schema from {remote}: {echo(reply.error)}")
    return schema_of(reply.result, COLUMNS)


def transact(rpc: ovs.jsonrpc.Connection, request: ovs.jsonrpc.Message, timeout_ms: int) -> tuple[int, Any]:
    """``rpc.transact_block(request)`` with a deadline: a device that accepts the connection and
    never answers would hold one of the few connector threads (``hub.CONNECTORS``) for good."""
    deadline = ovs.timeval.msec() + timeout_ms
    error = rpc.send(request)
    while not error:
        error, reply = rpc.recv()
        if error == errno.EAGAIN:
            if ovs.timeval.msec() >= deadline:
                return errno.ETIMEDOUT, None
            rpc.run()
            poller = ovs.poller.Poller()
            rpc.wait(poller)
            rpc.recv_wait(poller)
            poller.timer_wait_until(deadline)
            poller.block()
            error = 0
        elif not error and reply.type in (reply.T_REPLY, reply.T_ERROR) and reply.id == request.id:
            return 0, reply
    return error, None
