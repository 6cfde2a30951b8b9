"""A gateway whose connection's descriptor is numbered above 1,024 is driven like any other.

The OVS library's ``Poller`` waits with ``select.select`` by default, which refuses descriptors
of 1,024 and above (FD_SETSIZE): a manager holding a few hundred gateways (a socket and a wake-up
pipe each) lost every gateway connected after that. Here idle descriptors push the numbers up
first, then two gateways connect and an attach is realized on both (vtep-ctl reads them back).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from silonet.service import Manager
from tests.functional.conftest import two_gateways

pytestmark = pytest.mark.ovs
HIGH = 1100


@pytest.fixture
def high_descriptors() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = HIGH + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"the open-files hard limit here is {hard}; this test needs {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    held: list[int] = []
    try:
        while (fd := os.open(os.devnull, os.O_RDONLY)) < HIGH:
            held.append(fd)
        held.append(fd)
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _sockets_above(n: int) -> list[int]:
    out = []
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if fd > n and os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.append(fd)
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            pass
    return out


def test_gateways_connected_above_fd_setsize_realize(tmp_path: Path, manager: Manager,
                                                     high_descriptors: None) -> None:
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    assert probe > 1024  # every descriptor opened from here on (the gateways' sockets) is above FD_SETSIZE
    with two_gateways(tmp_path, manager) as (client, dbs):
        assert _sockets_above(1024), "no socket above descriptor 1,024: the test did not test anything"
        for group, vlan in (("ga", 100), ("gb", 2100)):
            r = client.post("/v1/networks/cust-42/attachments?wait=20", json={"interface_group": group, "vlan": vlan})
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "realized", r.json()
        assert dbs["gw-a"].ctl("list-bindings", "gw-a", "p1").split() == ["0100", "cust-42"]
        assert dbs["gw-b"].ctl("list-bindings", "gw-b", "p1").split() == ["2100", "cust-42"]
        assert "unknown-dst -> vxlan_over_ipv4/198.18.0.2" in dbs["gw-a"].ctl("list-remote-macs", "cust-42")


def test_a_descriptor_waited_on_twice_waits_for_both() -> None:
    """``Idl.wait`` registers a half-sent socket for POLLOUT, then POLLIN: the wait must wake when it
    can send the rest (``select.poll`` alone would keep POLLIN only and sleep until an answer that
    never comes)."""
    import select
    import socket

    from silonet.drivers.ovsdb.library import Poll

    a, b = socket.socketpair()
    try:
        poll = Poll()
        poll.register(a, select.POLLOUT)
        poll.register(a.fileno(), select.POLLIN)
        assert poll.poll(0) == [(a.fileno(), select.POLLOUT)]
        b.send(b"x")
        assert poll.poll(0) == [(a.fileno(), select.POLLOUT | select.POLLIN)]
    finally:
        a.close()
        b.close()
