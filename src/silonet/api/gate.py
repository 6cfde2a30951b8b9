"""The gate in front of every route: the caller's token first, then the body's size, and only
then does anything read or parse the body.

FastAPI reads and validates a body before the route's dependencies run, so a token checked by
a dependency came too late: a 63 MB body without a token cost seconds and hundreds of MB before
its 401, and deep JSON without a token got 422. This pure ASGI middleware answers 401 for a
request to a guarded path before reading a byte of its body, and 413 for a body over
``max_body`` bytes: at once by ``Content-Length``, else counted while reading (a chunked body
is read no further than the limit). The principal it found rides in the request's state, so
the route's dependency does not verify the token again.
"""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from silonet.api.errors import TooLarge, body
from silonet.errors import SilonetError, Unauthorized
from silonet.service.auth import Principal, Tokens

# Paths that need a token (a path under one of them too); every other route needs none: /healthz,
# /, /docs, /redoc and their files (/docs/static), /openapi.json and the /ui shell and assets,
# which hold no data.
GUARDED = ("/v1", "/metrics")
PRINCIPAL = "silonet.principal"  # the key in the request's state
_AUTHORIZATION = b"authorization"
_LENGTH = b"content-length"


def principal_of(scope: Scope) -> Principal | None:
    """The caller the gate verified for this request (None: the path is not guarded)."""
    return scope.get("state", {}).get(PRINCIPAL)


def _guarded(scope: Scope) -> bool:
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return any(path == p or path.startswith(p + "/") for p in GUARDED)


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


async def _answer(send: Send, status: int, err: SilonetError, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body(err.code, err.field, err.message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class Gate:
    """Token, then size, then the app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, tokens: Tokens, max_body: int) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _guarded(scope):
            header = _header(scope, _AUTHORIZATION)
            try:
                who = self.tokens.cached(header)
                if who is None:  # the database is asked in a worker thread: a slow one must not stall the loop
                    who = await anyio.to_thread.run_sync(self.tokens.verify, header)
            except Unauthorized as err:
                await _answer(send, 401, err, {"WWW-Authenticate": "Bearer"})
                return
            scope.setdefault("state", {})[PRINCIPAL] = who
        too_large = TooLarge(field="body", limit=self.max_body)
        length = _header(scope, _LENGTH)
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            await _answer(send, 413, too_large, {"Connection": "close"})
            return
        read = await self._read(receive)
        if read is None:  # over the limit while reading
            await _answer(send, 413, too_large, {"Connection": "close"})
            return
        first, disconnected = read
        if disconnected:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()  # after the body: the client's disconnect, when it comes

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[Message, bool] | None:
        """The whole body as one message (and whether the client left meanwhile), or None once
        it passed ``max_body`` (reading stops there)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return message, True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                return {"type": "http.request", "body": joined, "more_body": False}, False
