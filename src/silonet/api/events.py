"""``GET /v1/events``: the event stream as Server-Sent Events (store/events.py writes it).

Each event goes out as ``id:`` (its place in commit order, the same on every replica), ``event:``
(intent, attachment, gateway) and ``data:`` (JSON). ``Last-Event-ID`` (or ``?after=``) resumes after
that id; without either the stream starts at the newest event. An id older than the oldest event
kept gets one ``error`` event telling the client to resync from ``GET /v1/export``, then the stream
ends. A tenant's token sees its networks' events only, with reasons in general terms. A comment line
every ``HEARTBEAT_S`` keeps idle connections open. Readers wake at once when this process commits
events (``Runtime.feed``) and read the database every ``POLL_S`` for other replicas'.
``?limit=`` and ``?timeout=`` bound a stream (tests, scripts); by default it never ends.
"""


import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from silonet.errors import InvalidInput, Unauthorized
from silonet.service import Manager
from silonet.service.auth import Principal
from silonet.service.events import RESYNC, Stream
from silonet.store import events

HEARTBEAT_S = 15.0
POLL_S = 0.5
PRUNE_S = 60.0


def frame(event_id: int | None, kind: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def install(v1: APIRouter, manager: Manager, caller: Any) -> None:
    """The route, on the app's /v1 router (``caller``: its token dependency). This module's
    annotations are evaluated at once (no ``from __future__ import annotations``): FastAPI reads
    the route's, which name ``caller``, a local."""

    @v1.get("/events", tags=["events"], response_class=StreamingResponse, responses={200: {
        "content": {"text/event-stream": {}}, "description": "the event stream (Server-Sent Events)"}})
    async def stream_events(
        who: Annotated[Principal, Depends(caller)],
        last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
        after: Annotated[int | None, Query(ge=0, description="resume after this event id (as Last-Event-ID)")] = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000, description="end after this many events")] = None,
        timeout: Annotated[float | None, Query(gt=0, le=86_400, description="end after this many seconds")] = None,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> StreamingResponse:
        if last_event_id is not None and after is None:
            if not last_event_id.strip().isdigit() or len(last_event_id.strip()) > 19:
                raise InvalidInput(field="Last-Event-ID", rule="an event id: a whole number >= 0")
            after = int(last_event_id.strip())
        stream = Stream(manager, who.scope, after)
        problem = await anyio.to_thread.run_sync(stream.start)
        return StreamingResponse(_frames(manager, stream, problem, limit, timeout, authorization),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _frames(m: Manager, stream: Stream, problem: str | None, limit: int | None,
                  timeout: float | None, authorization: str | None = None) -> AsyncIterator[str]:
    if problem is not None:
        yield frame(None, "error", {"error": problem, "resync": RESYNC})
        return
    feed, sent = m.runtime.feed, 0
    end = None if timeout is None else time.monotonic() + timeout
    beat = time.monotonic() + HEARTBEAT_S
    yield ": silonet event stream\n\n"  # the headers go out now: a client knows it is connected
    while True:
        seq = feed.seq()
        rows, more = await anyio.to_thread.run_sync(stream.read)
        for event_id, kind, data in rows:
            yield frame(event_id, kind, data)
            sent += 1
            if limit is not None and sent >= limit:
                return
        if more:
            continue
        now = time.monotonic()
        if end is not None and now >= end:
            return
        if now >= beat:
            if authorization is not None:  # a token revoked meanwhile ends the stream
                try:
                    await anyio.to_thread.run_sync(m.tokens.verify, authorization)
                except Unauthorized as err:
                    yield frame(None, "error", {"error": err.message})
                    return
            yield ": keepalive\n\n"
            beat = now + HEARTBEAT_S
        pause = min(POLL_S, beat - now, *(() if end is None else (end - now,)))
        await feed.wait_async(seq, max(pause, 0.0))


async def prune_forever(manager: Manager) -> None:
    """Forget events past what the settings keep, every ``PRUNE_S`` (in every ``silonet serve``)."""
    settings = manager.settings

    def prune() -> None:
        with manager.db.sessions() as s, s.begin():
            events.prune(s, settings.events_keep_hours, settings.events_keep)
            events.prune_deliveries(s, settings.events_keep_hours)

    while True:
        with contextlib.suppress(Exception):  # a busy database: next round
            await anyio.to_thread.run_sync(prune)
        await asyncio.sleep(PRUNE_S)
