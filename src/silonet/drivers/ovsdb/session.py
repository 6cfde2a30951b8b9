"""The library's JSON-RPC session, with what the hubs need of it: the size of its last ``transact``,
how often the device probes, and a device's echo request answered without a turn of the IDL.

An idle fabric of 1,000 gateways is 200 echo requests a second (ovsdb-server probes a silent
client every 5 s), and answering one through the library (the link's turn: ``Idl.run``, the
session's parse and the reply's encoding, ``Idl.wait`` and the hub's re-registration) was two
thirds of the idle manager's CPU. ``answer_echo`` answers one that stands alone in the socket
with the bytes the library would send, and moves the session's state as the library's receive
would; anything else (a partial message, an echo followed by an update, an SSL stream, bytes
the library still holds) is left to the library's turn. The device's words are still parsed
(``json.loads``) and checked as the library checks a message before an answer is first made;
the answers to the few distinct requests a device sends are kept (``_REPLIES``).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import ovs.json
import ovs.jsonrpc
import ovs.stream
import ovs.timeval

ECHO_MAX = 256  # bytes peeked: a lone echo request is ~40 (ovsdb-server's); more is something else
REPLIES_KEPT = 64  # distinct echo requests whose answers are kept (a device sends one or a few)
PLAIN = (ovs.stream.TCPStream, ovs.stream.UnixStream)  # bytes on the socket are the messages (not SSL)
_REPLIES: dict[bytes, bytes] = {}


def echo_reply(data: bytes) -> bytes | None:
    """The library's answer to ``data`` if it is exactly one JSON-RPC echo request, else None."""
    reply = _REPLIES.get(data)
    if reply is not None:
        return reply
    if not data or len(data) >= ECHO_MAX or not data.endswith(b"}"):
        return None
    try:
        obj = json.loads(data)
    except ValueError:  # a part of a message, more than one, or not JSON: the library reads it
        return None
    if not isinstance(obj, dict):
        return None
    msg = ovs.jsonrpc.Message.from_json(obj)
    if not isinstance(msg, ovs.jsonrpc.Message) or msg.type != ovs.jsonrpc.Message.T_REQUEST or msg.method != "echo":
        return None
    reply = ovs.json.to_string(ovs.jsonrpc.Message.create_reply(msg.params, msg.id).to_json()).encode()
    if len(_REPLIES) < REPLIES_KEPT:
        _REPLIES[data] = reply
    return reply


class CountedSession(ovs.jsonrpc.Session):
    """The library's session, noting how many operations its last ``transact`` request carried
    (``transact``: its id and that count), which the library's ``Transaction.commit`` does not
    keep (a link has one transaction outstanding at a time), and the seconds between its last two
    answers to the device's echo requests (``echo_gap``: the device's probe interval, and how late
    the answers were; the hub answers a device that probes often sooner: ``hub.QUIET_QUICK_S``)."""

    transact: tuple[Any, int] | None = None
    echo_gap: float | None = None
    _echoed_at: float | None = None

    def send(self, msg: ovs.jsonrpc.Message) -> int:
        if msg.type == ovs.jsonrpc.Message.T_REQUEST and msg.method == "transact" and isinstance(msg.params, list):
            self.transact = (msg.id, len(msg.params) - 1)  # the first parameter is the database's name
        elif msg.type == ovs.jsonrpc.Message.T_REPLY:  # the only requests a client answers: echoes
            self._echoed()
        return super().send(msg)

    def _echoed(self) -> None:
        now = time.monotonic()
        if self._echoed_at is not None:
            self.echo_gap = now - self._echoed_at
        self._echoed_at = now

    def answer_echo(self) -> bool:
        """Answer the device's echo request if it is all the socket holds and the library holds
        nothing read or unsent (any thread holding the IDL). False: nothing was read or sent, or
        the answer waits in the library's output; a turn of the IDL handles the rest."""
        rpc = self.rpc
        if (rpc is None or rpc.status or rpc.input or rpc.output or rpc.parser is not None or rpc.mid_character
                or not isinstance(rpc.stream, PLAIN) or rpc.stream.socket is None):
            return False
        sock = rpc.stream.socket
        try:
            data = sock.recv(ECHO_MAX, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            return False
        reply = echo_reply(data)
        if reply is None:
            return False
        try:
            sock.recv(len(data), socket.MSG_DONTWAIT)  # exactly what was peeked: the request
        except OSError:
            return False
        now = ovs.timeval.msec()
        rpc.received_bytes += len(data)
        self.reconnect.receive_attempted(now)
        self.reconnect.activity(now)
        self._echoed()
        try:
            sent = sock.send(reply, socket.MSG_DONTWAIT)
        except OSError:  # a full or failed socket: the library sends it, and meets the failure
            sent = 0
        if sent < len(reply):
            rpc.output = reply[sent:].decode()
            return False
        return True
