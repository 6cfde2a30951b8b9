"""How silonet sets up the OVS Python library for a process holding many connections: its logging
off the console, its waits on ``poll(2)`` instead of ``select(2)``, and its JSON-RPC messages
written and read by orjson."""

from __future__ import annotations

import select
from typing import Any

import ovs.json
import ovs.poller
import ovs.vlog

from silonet import jsontext
from silonet.drivers.ovsdb import rpcjson


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


def fast_json() -> None:
    """Make the library write its JSON-RPC messages with orjson (``jsontext.dumps_compact``), and
    read them with it (``rpcjson``).

    ``ovs.json.to_string`` (every message a session sends) calls the module's ``dumper``, the
    standard library's encoder with sorted keys: 3.1 ms for a gateway's first write at 100 VNIs
    (~0.5 MB: ~10,000 locator references), orjson 0.18 ms, the same text. Idempotent."""
    ovs.json.dumper = jsontext.dumps_compact
    rpcjson.install()


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
