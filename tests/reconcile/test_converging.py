"""The cyclic collector waits while a large fleet is first read (``reconcile/converging``): paused
from the start until every worker read its gateway, or ``MAX_S``; one collection after; never for a
small fleet; a stop mid-way puts it back."""

from __future__ import annotations

import asyncio
import gc
from unittest import mock

import pytest

from silonet.reconcile import converging


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(converging, "CHECK_S", 0.01)


def test_paused_until_every_gateway_was_read_then_one_collection() -> None:
    unread = [3]
    seen: list[bool] = []

    def count() -> int:
        seen.append(gc.isenabled())
        unread[0] -= 1
        return unread[0] + 1

    assert gc.isenabled()
    with mock.patch.object(converging.gc, "collect", wraps=gc.collect) as collect:
        asyncio.run(converging.hold_while_converging(count, converging.FROM))
    assert seen and not any(seen)  # off while any was unread
    assert gc.isenabled() and collect.call_count == 1


def test_a_small_fleet_never_pauses_it() -> None:
    with mock.patch.object(converging.gc, "collect") as collect:
        asyncio.run(converging.hold_while_converging(lambda: pytest.fail("asked"), converging.FROM - 1))
    assert gc.isenabled() and collect.call_count == 0


def test_gateways_that_never_answer_end_it_at_max_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(converging, "MAX_S", 0.05)
    asyncio.run(asyncio.wait_for(converging.hold_while_converging(lambda: 5, converging.FROM), 5))
    assert gc.isenabled()


def test_a_stop_mid_way_puts_it_back() -> None:
    async def main() -> None:
        task = asyncio.create_task(converging.hold_while_converging(lambda: 5, converging.FROM))
        await asyncio.sleep(0.05)
        assert not gc.isenabled()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert gc.isenabled()
