"""Large OVSDB writes go a few at a time (``driver.large_write_slot``); an attach's never wait."""

from __future__ import annotations

import asyncio
import sys

from silonet import limits
from silonet.drivers.base import ApplyResult
from silonet.drivers.ovsdb import driver as ovsdb
from silonet.model import Gateway, Management, Port
from silonet.plan.ops import EnsureLogicalSwitch


def _driver() -> ovsdb.OvsdbDriver:
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", "tcp:127.0.0.1:1"), ports=(Port("p1"),))
    return ovsdb.OvsdbDriver(gw, lambda: None)  # never started: ``_call`` is replaced below


def test_large_writes_wait_for_a_slot_and_small_ones_do_not() -> None:
    in_flight, most = 0, 0

    async def scenario() -> tuple[int, bool]:
        nonlocal in_flight, most
        gate = asyncio.Event()

        async def call(fn):  # type: ignore[no-untyped-def]
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await gate.wait()
            in_flight -= 1
            return ApplyResult(1)

        drivers = [_driver() for _ in range(3 * ovsdb.LARGE_WRITES_AT_ONCE)]
        for d in drivers:
            d._call = call  # type: ignore[method-assign]
        large = [EnsureLogicalSwitch(5000 + i, f"ls{i}") for i in range(ovsdb.LARGE_WRITE)]
        tasks = [asyncio.ensure_future(d.apply(large)) for d in drivers]
        await asyncio.sleep(0.05)
        waiting_large = most
        small = asyncio.ensure_future(drivers[0].apply(large[:3]))  # not behind the large ones
        await asyncio.sleep(0.05)
        small_went = in_flight == waiting_large + 1
        gate.set()
        assert await asyncio.gather(*tasks, small) == [ApplyResult(1)] * (len(tasks) + 1)
        return waiting_large, small_went

    waiting_large, small_went = asyncio.run(scenario())
    assert waiting_large == ovsdb.LARGE_WRITES_AT_ONCE
    assert small_went


def test_one_slot_set_per_event_loop() -> None:
    async def get() -> asyncio.Semaphore:
        return ovsdb.large_write_slot()

    async def twice() -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        return ovsdb.large_write_slot(), ovsdb.large_write_slot()

    a, b = asyncio.run(twice())
    assert a is b
    assert asyncio.run(get()) is not a


def test_the_interpreter_switches_threads_less_often_while_large_writes_are_in_flight(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``limits.bulk``: in a process that set its intervals (``serve``), the bulk interval while any
    large write is in flight, the calm one otherwise and for small writes."""
    monkeypatch.setattr(limits, "_intervals", None)  # restored after: other tests see no intervals
    monkeypatch.delenv("SILONET_SWITCH_INTERVAL_MS", raising=False)
    before = sys.getswitchinterval()
    seen: list[float] = []

    async def call(fn):  # type: ignore[no-untyped-def]
        seen.append(sys.getswitchinterval())
        return ApplyResult(1)

    d = _driver()
    d._call = call  # type: ignore[method-assign]
    large = [EnsureLogicalSwitch(5000 + i, f"ls{i}") for i in range(ovsdb.LARGE_WRITE)]
    try:
        asyncio.run(d.apply(large))
        assert seen == [before]  # no intervals set (a test, the CLI): nothing changes
        limits.quicker_switches()
        asyncio.run(d.apply(large))
        asyncio.run(d.apply(large[:3]))
        assert seen[1:] == [limits.SWITCH_BULK_S, limits.SWITCH_INTERVAL_S]
        assert sys.getswitchinterval() == limits.SWITCH_INTERVAL_S  # back once none is in flight
        with limits.bulk():
            with limits.bulk():
                pass
            assert sys.getswitchinterval() == limits.SWITCH_BULK_S  # one still in flight
            monkeypatch.setenv("SILONET_SWITCH_INTERVAL_MS", "3")  # the operator's: one interval for both
            assert limits.quicker_switches() == 0.003 == sys.getswitchinterval()
        assert sys.getswitchinterval() == 0.003
    finally:
        sys.setswitchinterval(before)
