"""JSON-RPC messages read by orjson (``rpcjson.MessageParser``) are the messages the library's own
parser reads, however the socket cuts them: the same values in the same order, the same errors,
the same bytes left for the next message; and a device cannot make one message cost more than
``TRIES`` parses."""

from __future__ import annotations

import errno
import json
import socket
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import orjson
import ovs.json
import ovs.jsonrpc
import ovs.stream
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from silonet.drivers import ovsjson
from silonet.drivers.ovsdb import rpcjson
from silonet.drivers.ovsdb.library import fast_json

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["{", "}", "[", "]", "a]}", '"', "\\", "é", "\u2028", "x\u0000y"])
SCALAR = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
                     max_leaves=40)
MESSAGE = st.dictionaries(TEXT, VALUE, max_size=6) | st.lists(VALUE, max_size=6)


def _read(text: str, cuts: list[int], make: Callable[[], Any]) -> tuple[list[Any], str | None]:
    """What ``ovs.jsonrpc.Connection.recv`` makes of ``text`` arriving in pieces cut at ``cuts``: the
    values of the messages it finished, and what it holds unread. A message that does not parse (the
    parser's answer is its error's text) ends the connection: nothing after it is read."""
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]
    out, parser, held = [], None, ""
    for piece in pieces:
        held = piece
        while held:
            parser = parser or make()
            if ovs.json.PARSER == ovs.json.PARSER_C:
                held = held.encode()[parser.feed(held):].decode()
            else:
                held = held[parser.feed(held):]
            if parser.is_done():
                out.append(parser.finish())
                parser = None
                if isinstance(out[-1], str):
                    return out, None
    return out, held


def _library() -> Any:
    return rpcjson._LIBRARY()


@pytest.fixture(autouse=True, params=["C", "PYTHON"])
def _parsers(request: pytest.FixtureRequest) -> Any:
    """Both of the library's parsers, where the C one exists (their offsets count bytes and characters)."""
    if request.param == "C" and ovsjson.enable() != ovs.json.PARSER_C:
        pytest.skip("the OVS library's C JSON parser is not installed here")
    with mock.patch.object(ovs.json, "PARSER", request.param):
        yield


@settings(max_examples=150, deadline=None)
@given(st.lists(MESSAGE, min_size=1, max_size=4), st.data())
def test_messages_read_as_the_librarys_however_they_are_cut(messages: list[Any], data: st.DataObject) -> None:
    text = "".join(json.dumps(m, separators=(",", ":"), ensure_ascii=data.draw(st.booleans())) for m in messages)
    text = data.draw(st.sampled_from(["", " ", "\n"])) + text
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=8))))
    assert _read(text, cuts, rpcjson.MessageParser) == _read(text, cuts, _library)


@pytest.mark.parametrize("text", [
    '{"a":1]',  # broken inside
    '{"a":1}x',  # a value, then what is no message
    '"a string"{"a":1}',  # a message that is not an object or array
    '{"a":"\\u0000"}',  # a NUL, which the library refuses
    '{"a":"\\ud800"}',  # a lone surrogate
    '{"a":1e400}',  # out of range
    '{"a":"\x01"}',  # a control character unescaped
    '{"a":' + "[" * 1100 + "]" * 1100 + "}",  # deeper than either reads
    '{"a":[1,2,{"b":"]]]"}]}{"c":"{{{"}',  # brackets inside strings
    '{"a":1}]  {"b":2}',  # a message, then what is no message: read at once
])
@pytest.mark.parametrize("cut", [None, 3, 7])
def test_what_either_refuses_is_the_librarys_to_answer(text: str, cut: int | None) -> None:
    cuts = [] if cut is None or cut >= len(text) else [cut]
    assert _read(text, cuts, rpcjson.MessageParser) == _read(text, cuts, _library)


@pytest.mark.parametrize("text,cut", [('{"a":1},{"b":2}', 12), ('{"a":1}],[ "b",2]', 13)])
def test_what_follows_a_message_unread_with_it_ends_the_connection_there(text: str, cut: int) -> None:
    """The library's parser gives the message, then fails at what follows; this one has read past
    the message already when it finds it: the message is the error, one earlier."""
    ours, theirs = _read(text, [cut], rpcjson.MessageParser), _read(text, [cut], _library)
    assert theirs[0][0] == {"a": 1} and isinstance(theirs[0][-1], str)
    assert len(ours[0]) == 1 and isinstance(ours[0][0], str) and ours[1] is None


def test_a_message_costs_at_most_tries_parses() -> None:
    """Every read is short and ends in a bracket inside a string: orjson tries ``TRIES`` times, then
    the library's parser reads the message."""
    text = '{"k":[' + ",".join(['"}}]]"'] * 200) + "]}"  # strings of closing brackets: the count never balances
    cuts = [i + 1 for i, ch in enumerate(text) if ch in "]}" and i + 1 < len(text)]
    calls = 0
    real = orjson.loads

    def counted(s: str) -> Any:
        nonlocal calls
        calls += 1
        return real(s)

    with mock.patch.object(rpcjson.orjson, "loads", counted):
        values, held = _read(text, cuts, rpcjson.MessageParser)
    assert values == [json.loads(text)] and held == ""
    assert calls <= rpcjson.TRIES


def test_sessions_read_with_it_and_a_whole_text_is_still_the_librarys() -> None:
    """A session's connection reads each message with a ``MessageParser``; ``from_string`` (schemas,
    stored JSON) keeps the library's parser, with its trailer check."""
    fast_json()
    assert ovs.jsonrpc.Connection is rpcjson.Connection
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        session = ovs.jsonrpc.Session.open(f"tcp:127.0.0.1:{listening.getsockname()[1]}")
        try:
            deadline = time.monotonic() + 10
            while session.rpc is None and time.monotonic() < deadline:  # connected within a few turns
                session.run()
                time.sleep(0.01)
            assert isinstance(session.rpc, rpcjson.Connection)
            assert session.rpc.recv()[0] == errno.EAGAIN and session.rpc.parser is None  # nothing read: none
        finally:
            session.close()
    assert ovs.json.Parser is rpcjson._LIBRARY
    assert ovs.json.from_string('{"a":[1,2]}') == {"a": [1, 2]}
    assert isinstance(ovs.json.from_string('{"a":1} x'), str)  # the trailer is an error


def _connection() -> tuple[rpcjson.Connection, socket.socket, list[int]]:
    """A connection over one end of a socketpair (the other end returned), and the sizes of the
    reads it asked of its stream."""
    fast_json()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    stream = ovs.stream.Stream(ours, "unix:test", 0)
    asked: list[int] = []
    real = stream.recv

    def recv(n: int) -> tuple[int, Any]:
        asked.append(n)
        return real(n)

    stream.recv = recv  # type: ignore[method-assign]
    return ovs.jsonrpc.Connection(stream), theirs, asked


def test_a_large_message_takes_few_reads_and_a_character_cut_between_calls_is_whole() -> None:
    """A 100-VNI write's echo is tens of KB: read ``READ`` bytes at a time (the library's 4,096 made
    one read, and one hand-over of the interpreter's lock, per 4 KB). A character whose bytes came
    in two calls (nothing more to read between them) decodes whole: the decoder is the connection's."""
    conn, device, asked = _connection()
    try:
        rows = {f"row{i}": {"insert": {"tunnel_key": i, "name": f"ls{i:04d}", "description": "x" * 40}}
                for i in range(1000)}
        big = json.dumps({"method": "update2", "params": [None, {"Logical_Switch": rows}], "id": None})
        assert len(big) > 60_000
        device.sendall(big.encode())
        status, msg = conn.recv()
        assert status == 0 and msg.method == "update2" and msg.params[1]["Logical_Switch"] == rows
        assert len(asked) <= 2 and set(asked) == {rpcjson.READ}  # the library's reads: 20 and more
        text = json.dumps({"method": "echo", "params": ["café"], "id": "x"}, ensure_ascii=False).encode()
        cut = text.index("é".encode()) + 1  # inside the two bytes of é
        device.sendall(text[:cut])
        assert conn.recv() == (errno.EAGAIN, None) and conn.mid_character
        device.sendall(text[cut:])
        status, msg = conn.recv()
        assert status == 0 and msg.params == ["café"] and not conn.mid_character
    finally:
        device.close()
        conn.close()


def test_a_read_that_is_no_utf8_ends_the_connection() -> None:
    conn, device, _ = _connection()
    try:
        device.sendall(b'{"method":"echo","params":["\xff"],"id":"x"}')
        status, msg = conn.recv()
        assert status == errno.EILSEQ and msg is None and conn.status == errno.EILSEQ
    finally:
        device.close()
        conn.close()
