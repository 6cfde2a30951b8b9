"""``silonet events``: follow the event stream (README, "Event stream"), from a server (its
Server-Sent Events) or the local store (read as the server reads it: ``service/events.py``).
One line per event, or one JSON object per line with ``--json``; ``--limit``/``--timeout`` end it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from silonet.cli import render

POLL_S = 0.5


def local(manager: Any, after: int | None, limit: int | None, timeout: float | None) -> Iterator[dict[str, Any]]:
    """The local store's events after ``after`` (None: from now), as the stream sends them."""
    from silonet.service.events import RESYNC, Stream

    stream = Stream(manager, None, after)
    if (problem := stream.start()) is not None:
        yield {"id": None, "event": "error", "data": {"error": problem, "resync": RESYNC}}
        return
    end = None if timeout is None else time.monotonic() + timeout
    sent = 0
    while True:
        rows, more = stream.read()
        for event_id, kind, data in rows:
            yield {"id": event_id, "event": kind, "data": data}
            sent += 1
            if limit is not None and sent >= limit:
                return
        if more:
            continue
        if end is not None and time.monotonic() >= end:
            return
        time.sleep(POLL_S if end is None else max(0.0, min(POLL_S, end - time.monotonic())))


def remote(http: Any, after: int | None, limit: int | None, timeout: float | None,
           error: Callable[[Any], Exception]) -> Iterator[dict[str, Any]]:
    """A server's ``GET /v1/events``, parsed (``error``: the exception a failed answer becomes)."""
    params: dict[str, Any] = {k: v for k, v in (("limit", limit), ("timeout", timeout)) if v is not None}
    headers = {} if after is None else {"Last-Event-ID": str(after)}
    with http.stream("GET", "/v1/events", params=params, headers=headers, timeout=None) as r:
        if r.status_code != 200:
            r.read()
            raise error(r)
        event: dict[str, Any] = {}
        for line in r.iter_lines():
            if not line:
                if "event" in event:
                    yield {"id": event.get("id"), "event": event["event"], "data": event.get("data", {})}
                event = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                event[key] = json.loads(value) if key == "data" else int(value) if key == "id" else value


def command(backend: Callable[[], Any]) -> Callable[..., None]:
    def events(
        after: Annotated[int | None, typer.Option(help="resume after this event id (default: from now)")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="stop after this many events")] = None,
        timeout: Annotated[float | None, typer.Option(min=0.1, help="stop after this many seconds")] = None,
        json_: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    ) -> None:
        """Follow the event stream: intent changes, attachment and gateway status changes."""
        for e in backend().events(after, limit, timeout):
            if json_:
                print(json.dumps(e, separators=(",", ":")), flush=True)
            else:
                render.event(e)
            if e["event"] == "error":
                raise typer.Exit(1)

    return events
