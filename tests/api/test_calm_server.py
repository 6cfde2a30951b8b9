"""``silonet serve``'s HTTP loop (api/calm.py): it ticks once each TICK_S, not ten times a second,
still sends a Date header, stops at once on a stop signal, and says so when it could not start."""

from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from silonet.api import calm
from silonet.devices.vtepdb import free_port


async def hello(scope: dict, receive: Any, send: Any) -> None:
    """The smallest ASGI app: 200 to any request (lifespan events are not supported: uvicorn says so)."""
    if scope["type"] != "http":
        raise RuntimeError("http only")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_ticks_once_per_period_and_a_stop_wakes_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calm, "TICK_S", 60.0)  # a stop found only by the next tick would take a minute
    port = free_port()
    server = calm.CalmServer(uvicorn.Config(hello, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert r.status_code == 200 and r.text == "hello" and r.headers["date"].endswith(" GMT")
        time.sleep(0.5)  # uvicorn's own loop would have ticked five more times by now
        assert server.ticks == 1
    finally:
        server.handle_exit(signal.SIGTERM, None)
        thread.join(20)
    assert not thread.is_alive(), "a stop waited for the next tick"
    assert server.ticks == 2  # the tick the stop woke, which ended the loop


def test_a_server_that_cannot_start_exits_with_uvicorns_status() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exited:
            calm.run(hello, "127.0.0.1", taken.getsockname()[1])
    assert exited.value.code == calm.STARTUP_FAILURE
