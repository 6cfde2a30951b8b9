"""The JSON-RPC messages a device sends, read by orjson; the library's own parser wherever orjson
would not read them as it does.

``ovs.jsonrpc.Connection.recv`` makes a parser per message (``ovs.json.Parser()``), feeds it what
each read of the socket gave (4,096 bytes at most) until it holds a whole JSON value, and takes the
value (``finish``). The library's C parser (``drivers/ovsjson``) was most of the 8 % of a
1,000-gateway converge spent receiving: 0.37 ms for a 37 KB echo of a 100-VNI write, orjson 0.07.

``MessageParser`` keeps what it is fed and asks orjson for the value when it may be whole:
- the text ends in ``}`` or ``]`` and either its brackets balance (counted, not parsed) or the read
  was short (the socket had no more; brackets inside strings miscount), or
- a closing bracket is followed by what cannot follow one inside a value (``BOUNDARY``: the next
  message began in the same read).

A text that ends early is kept; one with content after the first value gives that value, and the
rest goes back to the library for the next message. Anything else is the library's parser's, given
every byte kept so far: a value that is not an object or array, a NUL (``\\u0000``, which the
library refuses), text orjson refuses (its error, or its value, is then the library's), and a
message that made orjson try ``TRIES`` times (a device cannot make one message cost more than twice
that many parses). Where the next message begins in the same read, the first is parsed up to the
closing bracket before it, once (a second parse was a third of the time spent here).
An error may be found a read later than the library's parser finds it; the connection ends at it
all the same (``Connection`` drops a session whose message does not parse). Where what follows a
message is no message and came in the same read as part of it, it ends one message early: the
message is the error.

One difference stays: a number with a fraction or an exponent is a float (the library made an
integral one an integer). ovsdb-server writes integers with neither; a device writing ``5000.0``
where the schema wants an integer has that value refused, as any value of the wrong type.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
from typing import Any

import orjson
import ovs.json
import ovs.jsonrpc

READ = 65536  # bytes ``Connection.recv`` asks of the socket at a time (the library asked 4,096): fewer read
# calls per message, each of which let go of the interpreter's lock; below glibc's mmap threshold
TRIES = 16  # orjson's attempts at one message before the library's parser reads it
_CLOSERS = ("}", "]")
# A closing bracket, then (past whitespace) anything but a comma or another closing bracket: never
# inside one JSON value; so, outside strings, the end of a message and what follows it (the next one)
BOUNDARY = re.compile(r"[}\]]\s*[^\s,}\]]")
TAIL = 64  # characters of the last piece looked at with the next (a boundary cut in two)
_LIBRARY = ovs.json.Parser  # the library's class: its C parser or its Python one, as ``ovs.json.PARSER`` says


def _units(text: str) -> int:
    """How the library counts what a parser consumed: bytes with its C parser, else characters."""
    if ovs.json.PARSER == ovs.json.PARSER_C and not text.isascii():
        return len(text.encode())
    return len(text)


class MessageParser:
    """A parser with the library's interface (``feed``, ``is_done``, ``finish``) for one message."""

    __slots__ = ("_chunks", "_depth", "_done", "_library", "_opened", "_tries", "_value")

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._depth = 0  # opening brackets less closing ones, strings included
        self._tries = 0
        self._library: Any = None
        self._value: Any = None
        self._done = False
        self._opened = False  # the first character that is not whitespace was seen: ``{`` or ``[``

    def feed(self, s: str) -> int:
        """Take ``s``; what of it was consumed (all of it, until a value is whole)."""
        if self._library is not None:
            return self._library.feed(s)
        if self._done:
            return 0
        chunks = self._chunks
        before = chunks[-1][-TAIL:] if chunks else ""
        chunks.append(s)
        self._depth += s.count("{") + s.count("[") - s.count("}") - s.count("]")
        if not self._opened and (lead := s.lstrip()[:1]):
            if lead not in ("{", "["):
                return self._hand_over()
            self._opened = True
        cut = None  # where a closing bracket is followed by the next message: the first one's end?
        if not s.rstrip().endswith(_CLOSERS) or (self._depth != 0 and len(s) >= READ):
            found = BOUNDARY.search(before + s)
            if found is None:
                return _units(s)
            cut = found.start() + 1 - len(before)  # in ``s``
        text = s if len(chunks) == 1 else "".join(chunks)
        if "\\u0000" in text:
            return self._hand_over()
        try:
            if cut is not None:  # one parse of the first message, where the next one follows in this read
                try:
                    self._value, end = orjson.loads(text[:len(text) - len(s) + cut]), len(text) - len(s) + cut
                    return self._finished(text, s, end)
                except orjson.JSONDecodeError:
                    pass  # a bracket inside a string: as below
            self._value, end = orjson.loads(text), len(text)
        except orjson.JSONDecodeError as err:
            if err.pos >= len(text.rstrip()):  # it ran out: more is coming
                self._tries += 1
                if self._tries >= TRIES:
                    return self._hand_over()
                self._chunks = [text]
                return _units(s)
            try:  # content after the first value (the next message), or an error after a whole value
                self._value, end = orjson.loads(text[:err.pos]), err.pos
            except orjson.JSONDecodeError:
                return self._hand_over()
        return self._finished(text, s, end)

    def _finished(self, text: str, s: str, end: int) -> int:
        """The value (``_value``) ends at ``end`` of ``text``, whose last read is ``s``: what of it was
        consumed."""
        self._done, self._chunks = True, []
        earlier = len(text) - len(s)  # what earlier reads gave, consumed already
        if end < earlier and text[end:earlier].strip():  # the value, then what is no message, said consumed
            self._value = f"content after a message at character {end}"  # an error: the connection ends
        return _units(s[:max(0, end - earlier)])

    def _hand_over(self) -> int:
        """The library's parser reads every byte kept; what of the last chunk it consumed. Where it
        stopped inside an earlier one (said consumed already), it found an error, which ends the
        connection: all of the last is consumed (never a count inside a character)."""
        text = "".join(self._chunks)
        last = self._chunks[-1]
        self._chunks = []
        self._library = _LIBRARY()
        consumed = self._library.feed(text) - _units(text[:len(text) - len(last)])
        return consumed if consumed > 0 else _units(last) if self._library.is_done() else 0

    def is_done(self) -> bool:
        return self._library.is_done() if self._library is not None else self._done

    def finish(self) -> Any:
        """The value, or the library's error text (it answers a string for a failed parse)."""
        if self._library is not None:
            return self._library.finish()
        if not self._done:
            return "unexpected end of input"
        value, self._value = self._value, None
        return value


class Connection(ovs.jsonrpc.Connection):
    """The library's JSON-RPC connection, each message read by a ``MessageParser`` from reads of
    ``READ`` bytes. ``recv`` is the library's (one message per call; a parser only once something
    was read, as ``session.answer_echo`` looks), with two differences: the reads are 16 times
    larger (a 100-VNI write's 37 KB echo took ten reads, each giving the interpreter's lock away
    and waiting to take it back: ``limits.quicker_switches``), and the UTF-8 decoder is the
    connection's, so a character cut between two reads that came in separate calls is whole (the
    library made a decoder per call)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def recv(self) -> tuple[int, Any]:
        if self.status:
            return self.status, None
        while True:
            if not self.input:
                error, data = self.stream.recv(READ)
                text = ""
                if data and not error:
                    try:
                        text = self._decoder.decode(data)
                    except UnicodeError:
                        error = errno.EILSEQ
                if error:
                    if error == errno.EAGAIN:
                        return error, None
                    ovs.jsonrpc.vlog.warn(f"{self.name}: receive error: {os.strerror(error)}")
                    self.error(error)
                    return self.status, None
                if not data:
                    self.error(ovs.jsonrpc.EOF)
                    return ovs.jsonrpc.EOF, None
                self.input = text  # empty while a character's bytes are cut: the next read completes it
                self.received_bytes += len(text)
                continue
            if self.parser is None:
                self.parser = MessageParser()
            if ovs.json.PARSER == ovs.json.PARSER_C:
                self.input = self.input.encode()[self.parser.feed(self.input):].decode()
            else:
                self.input = self.input[self.parser.feed(self.input):]
            if self.parser.is_done():
                msg = self._Connection__process_msg()  # type: ignore[attr-defined]
                return (0, msg) if msg else (self.status, None)

    @property
    def mid_character(self) -> bool:
        """Bytes of a character the last read cut in two are held (read only by ``recv``)."""
        return bool(self._decoder.getstate()[0])


def install() -> None:
    """Make the library's sessions (and whoever opens a connection through ``ovs.jsonrpc``) read
    messages with ``MessageParser``. Not ``ovs.json.Parser``: the library's Python parser names
    that class in its own ``__new__``, and ``from_string`` keeps its trailer check. Idempotent."""
    ovs.jsonrpc.Connection = Connection
