"""The session the hubs drive: what it notes of its own requests and answers, and a device's echo
request answered without the library's turn (``answer_echo``) only when it stands alone.

The device end is one side of a socket pair; the library's own reading (``Session.recv``) is what
the bytes left in the socket must still give. A real ovsdb-server's probes are in the functional
suite (``test_echo_answers``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import ovs.jsonrpc
import ovs.stream
import pytest

from silonet.drivers.ovsdb import session as session_module
from silonet.drivers.ovsdb.session import CountedSession, echo_reply

# what ovsdb-server 3.1.0 sends a silent client (captured here), and what the library answers
OVSDB_ECHO = b'{"id":"echo","method":"echo","params":[]}'
LIBRARY_REPLY = ovs.json.to_string(ovs.jsonrpc.Message.create_reply([], "echo").to_json()).encode()
UPDATE = b'{"id":null,"method":"update","params":[null,{}]}'


def counted_session() -> CountedSession:
    """A session as ``MemoIdl`` makes it, never connected: ``send`` only queues."""
    session = ovs.jsonrpc.Session.open("tcp:198.18.0.1:6640")
    session.__class__ = CountedSession
    return session  # type: ignore[return-value]


@pytest.fixture
def linked() -> Iterator[tuple[CountedSession, socket.socket]]:
    """A connected session over a socket pair, and the device's end."""
    ours, device = socket.socketpair()
    ours.setblocking(False)
    session = counted_session()
    session.rpc = ovs.jsonrpc.Connection(ovs.stream.UnixStream(ours, "unix:test", 0))
    session.reconnect.connected(ovs.timeval.msec())
    device.settimeout(2)
    yield session, device
    session.close()
    device.close()


def pending(sock: socket.socket) -> bytes:
    """What the socket holds, without taking it."""
    try:
        return sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


def test_the_session_notes_the_operations_of_its_last_transact_request() -> None:
    session = counted_session()
    msg = ovs.jsonrpc.Message.create_request("transact", ["hardware_vtep", {"op": "comment"}, {"op": "abort"}])
    session.send(msg)
    session.send(ovs.jsonrpc.Message.create_request("echo", []))
    assert session.transact == (msg.id, 2)


def test_the_session_notes_the_time_between_its_last_two_echo_answers() -> None:
    session = counted_session()
    assert session.echo_gap is None
    session.send(ovs.jsonrpc.Message.create_reply([], "echo"))
    assert session.echo_gap is None  # one answer: how often the device probes is not known yet
    session.send(ovs.jsonrpc.Message.create_request("transact", ["hardware_vtep"]))  # not an answer
    session.send(ovs.jsonrpc.Message.create_reply([], "echo"))
    assert session.echo_gap is not None and 0 <= session.echo_gap < 1


@pytest.mark.parametrize("data, reply", [
    (OVSDB_ECHO, LIBRARY_REPLY),
    (b'{"method":"echo","params":["x",1],"id":7}', b'{"error":null,"id":7,"result":["x",1]}'),
    (OVSDB_ECHO[:-1], None),  # a part of one
    (OVSDB_ECHO + OVSDB_ECHO, None),  # more than one
    (UPDATE, None),  # a notification
    (b'{"id":"echo","result":[]}', None),  # an answer, not a request
    (b'{"id":"echo","method":"echo"}', None),  # no params: the library's own check refuses it
    (b'["echo"]', None),
    (b'{"id":"echo","method":"echo","params":[]} ', None),
    (b"", None),
])
def test_only_one_whole_echo_request_gets_an_answer(data: bytes, reply: bytes | None) -> None:
    got = echo_reply(data)
    assert got == reply
    if reply is not None:  # exactly what the library itself answers
        msg = ovs.jsonrpc.Message.from_json(ovs.json.from_string(data.decode()))
        assert got == ovs.json.to_string(ovs.jsonrpc.Message.create_reply(msg.params, msg.id).to_json()).encode()


def test_answers_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "_REPLIES", {})
    for n in range(session_module.REPLIES_KEPT + 10):
        assert echo_reply(b'{"id":%d,"method":"echo","params":[]}' % n) is not None
    assert len(session_module._REPLIES) == session_module.REPLIES_KEPT


def test_a_lone_echo_request_is_answered_and_counts_as_the_device_speaking(
        linked: tuple[CountedSession, socket.socket]) -> None:
    session, device = linked
    session.reconnect.last_activity = 0
    device.sendall(OVSDB_ECHO)
    assert session.answer_echo()
    assert device.recv(256) == LIBRARY_REPLY
    assert pending(session.rpc.stream.socket) == b""  # the request was taken
    assert session.reconnect.last_activity > 0 and session.rpc.get_received_bytes() == len(OVSDB_ECHO)
    device.sendall(OVSDB_ECHO)
    assert session.answer_echo() and session.echo_gap is not None  # the second answer: the gap is known


@pytest.mark.parametrize("data", [OVSDB_ECHO + UPDATE, OVSDB_ECHO[:20], UPDATE])
def test_anything_but_a_lone_echo_is_left_whole_to_the_library(
        linked: tuple[CountedSession, socket.socket], data: bytes) -> None:
    session, device = linked
    device.sendall(data)
    assert not session.answer_echo()
    assert pending(session.rpc.stream.socket) == data  # nothing was taken
    if data == OVSDB_ECHO + UPDATE:  # the library reads both: answers the echo, returns the update
        assert session.recv() is None
        msg = session.recv()
        assert msg is not None and msg.method == "update"
        assert device.recv(256) == LIBRARY_REPLY


def test_nothing_is_answered_while_the_library_holds_bytes(linked: tuple[CountedSession, socket.socket]) -> None:
    session, device = linked
    device.sendall(OVSDB_ECHO)
    session.rpc.input = '{"id":null,'  # a message begun: what follows is its rest, not an echo
    assert not session.answer_echo()
    session.rpc.input, session.rpc.output = "", '{"id":1,"method":"transact","params":[]}'
    assert not session.answer_echo()  # a request still to send goes first
    assert pending(session.rpc.stream.socket) == OVSDB_ECHO


def test_an_answer_the_socket_does_not_take_waits_in_the_library_output(
        linked: tuple[CountedSession, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    session, device = linked

    class Full:
        """The session's socket, refusing to send (a send buffer full)."""

        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def recv(self, *args: int) -> bytes:
            return self.sock.recv(*args)

        def send(self, *_args: object) -> int:
            raise BlockingIOError

    device.sendall(OVSDB_ECHO)
    real = session.rpc.stream.socket
    monkeypatch.setattr(session.rpc.stream, "socket", Full(real))
    assert not session.answer_echo()  # taken, not sent: the library's turn sends it
    assert session.rpc.output == LIBRARY_REPLY.decode()
    monkeypatch.setattr(session.rpc.stream, "socket", real)
    session.rpc.run()
    assert device.recv(256) == LIBRARY_REPLY


def test_a_device_that_hung_up_is_left_to_the_library(linked: tuple[CountedSession, socket.socket]) -> None:
    session, device = linked
    device.close()
    assert not session.answer_echo()
    assert session.recv() is None and session.rpc.status == ovs.jsonrpc.EOF
