"""A real ovsdb-server's echo requests answered without a turn of the IDL (``session.answer_echo``).

The device probes every second here (``probing_each_second``): an idle link must answer each
probe in time or be dropped, must not be turned for the probe deadline each answer moved, and
the library must find the session as its own answers would have left it (a write after the idle
window lands; ``vtep-ctl`` is the independent reader)."""

from __future__ import annotations

import asyncio
import time

import pytest

from silonet.devices.vtepdb import VtepDb
from silonet.drivers.base import wait_connected
from silonet.drivers.ovsdb import connection, hub
from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.drivers.ovsdb.session import CountedSession
from silonet.model import Gateway, Management, Port
from silonet.plan import GatewayState, LogicalSwitch, diff
from tests.functional.conftest import probing_each_second

pytestmark = pytest.mark.ovs
IDLE_S = 5.0


def test_an_idle_link_answers_the_device_probes_without_turning_and_stays_whole(
        vtepdb: VtepDb, monkeypatch: pytest.MonkeyPatch) -> None:
    one = hub.Hubs(1)
    monkeypatch.setattr(connection, "hubs", lambda: one)
    # our own probe after 2 s of silence: the device speaks every second, so it never comes due,
    # and a link answered without turns must not be turned for the deadline each answer moved
    monkeypatch.setattr(connection, "PROBE_INTERVAL_MS", 2000)
    answered: list[float] = []
    answer = CountedSession.answer_echo

    def counted(self: CountedSession) -> bool:
        done = answer(self)
        if done:
            answered.append(time.monotonic())
        return done

    monkeypatch.setattr(CountedSession, "answer_echo", counted)
    turns: list[float] = []
    turn = connection.Link._turn

    def counted_turn(self: connection.Link, waits: hub.Waits) -> bool:
        turns.append(time.monotonic())
        return turn(self, waits)

    monkeypatch.setattr(connection.Link, "_turn", counted_turn)
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", probing_each_second(vtepdb)), ports=(Port("p1"),))
    desired = GatewayState({5001: LogicalSwitch(5001, "after-the-echoes", frozenset({"198.18.0.2"}))},
                           {("p1", 101): 5001}, {})

    async def scenario() -> tuple[int, float, int]:
        driver = OvsdbDriver(gw, lambda: None)
        try:
            await driver.start()
            await wait_connected(driver, 20)
            session = driver._link.idl._session  # type: ignore[union-attr]
            seqno = session.get_seqno()
            await asyncio.sleep(1.5)  # the first probes, answered by turns while the hub learns their pace
            start = time.monotonic()
            await asyncio.sleep(IDLE_S)
            idle_turns = sum(1 for t in turns if t >= start)
            await driver.apply(diff(desired, (await driver.read()).owned))
            return idle_turns, start, session.get_seqno() - seqno
        finally:
            await driver.close()

    idle_turns, start, reconnects = asyncio.run(scenario())
    in_window = [t for t in answered if start <= t < start + IDLE_S]
    assert len(in_window) >= IDLE_S - 2, f"the device probed every second; answered without a turn: {in_window}"
    assert idle_turns == 0, f"{idle_turns} turns while the device only probed"
    assert reconnects == 0, "the connection never dropped"
    log = (vtepdb.dir / "ovsdb-server.log").read_text()
    assert "no response to inactivity probe" not in log, log[-500:]
    assert "after-the-echoes" in vtepdb.ctl("list-ls"), "a write after the answered echoes landed"
    assert "5001" in vtepdb.ctl("get", "Logical_Switch", "after-the-echoes", "tunnel_key")
