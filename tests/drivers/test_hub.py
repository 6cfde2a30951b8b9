"""The OVSDB hub: one poll set over many links, each run only when something happened to it.

Links here are small fakes over pipes (the hub's contract is ``turn(waits) -> alive``); the
real links (``connection.Link`` over ovsdb-server) are driven by the functional tests.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator

import ovs.timeval
import pytest

from silonet.drivers.ovsdb import hub as hub_module
from silonet.drivers.ovsdb.hub import Hub, Hubs, Resyncs, Waits


class PipeLink:
    """Waits for its pipe to be readable; counts its turns; drains what arrived."""

    def __init__(self, name: str = "", fail: bool = False) -> None:
        self.name = name
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        self.turns = 0
        self.read = b""
        self.fail = fail
        self.alive = True
        self.busy = True  # ``pressing``: the hub turns it at once (False: within QUIET_S)
        self.hasty = False  # ``quick``: a calm hub turns it within QUIET_QUICK_S
        self.turned = threading.Event()
        self.pings = 0
        self.answering = False  # ``echoed``: what arrives is taken without a turn
        self.answered = 0
        self.timer_ms: float | None = None  # a turn also waits this long (None: no timer)
        self.moved_to: float | None = None  # an answer moves the deadline here (``ovs.timeval.msec``)

    def pressing(self) -> bool:
        return self.busy

    def quick(self) -> bool:
        return self.hasty

    def ping(self) -> None:
        self.pings += 1

    def echoed(self, waits: Waits) -> bool:
        if not self.answering:
            return False
        with contextlib.suppress(BlockingIOError):
            self.read += os.read(self.rfd, 512)
        self.answered += 1
        if self.moved_to is not None:
            waits.until = self.moved_to
        return True

    def turn(self, waits: Waits) -> bool:
        self.turns += 1
        if not self.alive:
            return False
        if self.fail:
            raise RuntimeError("a bug in a link")
        with contextlib.suppress(BlockingIOError):
            self.read += os.read(self.rfd, 512)
        waits.fd_wait(self.rfd, select.POLLIN)
        if self.timer_ms is not None:
            waits.timer_wait(self.timer_ms)
        self.turned.set()  # after the read: a poke from now on is seen by a later turn
        return True

    def poke(self, data: bytes = b"x") -> None:
        self.turned.clear()
        os.write(self.wfd, data)

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


def until(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def let_go(*hubs: Hub) -> None:
    """Every link leaves its hub before its descriptors close (a hub's links close their own)."""
    for hub in hubs:
        for link in list(hub.links):
            link.alive = False  # type: ignore[attr-defined]
            hub.kick(link)
    assert until(lambda: not any(h.links for h in hubs))


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub(99)
    h.start()
    yield h  # a daemon thread, blocked in poll once its links are gone
    let_go(h)


def test_waits_keep_every_event_and_the_earliest_deadline() -> None:
    w = Waits()
    w.fd_wait(5, select.POLLOUT)
    w.fd_wait(5, select.POLLIN)
    w.fd_wait(-1, select.POLLIN)  # a closed socket's number: not registered
    assert w.fds == {5: select.POLLOUT | select.POLLIN}
    now = ovs.timeval.msec()
    w.timer_wait(10_000)
    w.timer_wait_until(now + 50)
    assert now + 49 <= w.until <= now + 51
    w.immediate_wake()
    assert w.until == 0


def test_a_link_runs_only_when_its_descriptor_is_ready(hub: Hub) -> None:
    quiet, busy = PipeLink("quiet"), PipeLink("busy")
    try:
        for link in (quiet, busy):
            hub.kick(link)
        assert until(lambda: quiet.turns == 1 and busy.turns == 1)
        for i in range(20):
            busy.poke(b"%d," % i)
            assert busy.turned.wait(5)
        assert until(lambda: busy.read.count(b",") == 20)
        assert quiet.turns == 1  # nothing happened to it: never run again
    finally:
        let_go(hub)
        quiet.close()
        busy.close()


def test_a_descriptor_number_reused_by_another_link_wakes_the_new_owner() -> None:
    """A link closes its descriptor and another link's new one gets the same number in the same
    round: the registration follows the number's new owner even when the old owner's last turn
    comes after the new owner's first (turns driven by hand here, in that order)."""
    hub = Hub(98)  # not started: this thread turns and waits
    a = PipeLink("a")
    hub._turn(a)
    assert hub._owner == {a.rfd: a}
    a.alive = False
    os.close(a.rfd)
    b = PipeLink("b")  # the lowest free number: a's
    assert b.rfd == a.rfd
    hub._turn(b)
    hub._turn(a)  # a's last turn: it must not unregister b's descriptor
    assert list(hub.links) == [b] and hub._owner == {b.rfd: b}
    b.poke()
    assert hub._wait() == {b}, "b's descriptor was unregistered by the link that held its number before"
    os.close(a.wfd)
    b.close()


def test_a_link_that_raises_is_dropped_and_the_others_keep_running(hub: Hub) -> None:
    bad, good = PipeLink("bad", fail=True), PipeLink("good")
    try:
        hub.kick(bad)
        hub.kick(good)
        assert until(lambda: bad.turns == 1 and good.turns == 1)
        assert bad not in hub.links and good in hub.links
        bad.poke()
        good.poke()
        assert good.turned.wait(5)
        assert bad.turns == 1
    finally:
        let_go(hub)
        bad.close()
        good.close()


def test_a_due_timer_runs_its_link_without_any_descriptor(hub: Hub) -> None:
    class Timer:
        def __init__(self) -> None:
            self.turns = 0

        def turn(self, waits: Waits) -> bool:
            self.turns += 1
            waits.timer_wait(20)
            return self.turns < 5

        def pressing(self) -> bool:
            return False  # its timers end a calm wait

        def quick(self) -> bool:
            return False

    t = Timer()
    hub.kick(t)
    assert until(lambda: t.turns == 5)
    assert t not in hub.links


def test_a_timer_replaced_by_a_later_turn_does_not_fire(hub: Hub) -> None:
    """The hub keeps timers in a heap: an entry from before the link's last turn is stale."""
    class Rearmed:
        def __init__(self) -> None:
            self.turns = 0
            self.alive = True

        def turn(self, waits: Waits) -> bool:
            self.turns += 1
            if self.turns == 1:
                waits.timer_wait(150)  # replaced at once by the kicked turn below
            elif self.turns == 2:
                waits.timer_wait(10_000)
            return self.alive

        def pressing(self) -> bool:
            return True

        def quick(self) -> bool:
            return False

    r = Rearmed()
    hub.kick(r)
    assert until(lambda: r.turns == 1)
    hub.kick(r)
    assert until(lambda: r.turns == 2)
    time.sleep(0.4)
    assert r.turns == 2, "the first turn's timer fired after the second turn replaced it"
    assert hub._timers and all(until_ >= ovs.timeval.msec() for until_, _n, _l in hub._timers[:1])


def test_hundreds_of_links_share_a_few_threads() -> None:
    """Links are spread over at most ``size`` hub threads (the least loaded first)."""
    hubs = Hubs(size=3)
    links = [PipeLink(str(i)) for i in range(300)]
    try:
        for link in links:
            hubs.place(link).kick(link)
        assert len(hubs.hubs) == 3
        assert until(lambda: all(link.turns == 1 for link in links))
        assert sorted(len(h.links) for h in hubs.hubs) == [100, 100, 100]
        for link in links[::7]:
            link.poke()
        assert until(lambda: all(link.turns == 2 for link in links[::7]))
        assert sum(link.turns for link in links) == 300 + len(links[::7])
    finally:
        let_go(*hubs.hubs)
        for link in links:
            link.close()


def test_a_device_that_accepts_and_never_answers_frees_its_connector() -> None:
    """The schema fetch runs in one of a few shared connector threads: it must end on its own."""
    import socket

    from silonet.drivers.ovsdb.opening import fetch_schema

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the kernel completes the handshake; nothing ever reads or answers
    failed: list[BaseException] = []

    def fetch() -> None:
        try:
            fetch_schema(f"tcp:127.0.0.1:{silent.getsockname()[1]}", timeout_ms=300)
        except BaseException as err:
            failed.append(err)

    try:
        t = threading.Thread(target=fetch, daemon=True)
        t.start()
        t.join(20)  # without a deadline the fetch never returns: the test fails here instead of hanging
        assert not t.is_alive(), "the schema fetch of a silent device did not end"
        assert len(failed) == 1 and isinstance(failed[0], ConnectionError) and "get_schema" in str(failed[0])
    finally:
        silent.close()


class Sleeper:
    """A link waiting for a resync slot: counts the times it was woken."""

    def __init__(self, name: str) -> None:
        self.name, self.woken = name, 0

    def wake(self) -> None:
        self.woken += 1

    def __repr__(self) -> str:
        return self.name


def test_resync_slots_go_to_the_waiting_links_in_order_and_are_never_polled() -> None:
    r = Resyncs(2)
    a, b, c, d, e = (Sleeper(n) for n in "abcde")
    assert r.take(a) and r.take(b)
    assert not r.take(c) and not r.take(d) and not r.take(c)  # asking again keeps its place
    assert r.waiting == 2 and (c.woken, d.woken) == (0, 0)
    r.give()  # a's slot: handed to c, woken; e (new) may not jump the queue
    assert (c.woken, d.woken) == (1, 0) and not r.take(e) and r.take(c)
    r.forget(d)  # d closes while waiting: out of the queue
    r.give()  # b's: to e
    assert e.woken == 1 and r.waiting == 0
    r.forget(e)  # closed before its turn came: the slot it was handed goes on, here free
    assert r.take(Sleeper("f"))
    r.give()
    r.give()  # c's and f's: both free again, never more than the size
    assert r.take(a) and r.take(b) and not r.take(d)


def test_a_calm_hub_turns_its_links_in_one_wake_up_per_quiet_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links none of which presses (idle: their devices' echoes) are turned at most once per
    QUIET_S whatever arrives meanwhile; a kick (a job) ends the wait at once, and a link that
    presses (a write's answer due) is turned for each event again."""
    monkeypatch.setattr(hub_module, "QUIET_S", 30.0)
    h = Hub(98)
    links = [PipeLink(f"calm{i}") for i in range(3)]
    for link in links:
        link.busy = False
        h.kick(link)
    h.start()
    try:
        assert until(lambda: all(link.turns >= 1 for link in links))
        turns = [link.turns for link in links]
        for _ in range(5):
            for link in links:
                link.poke()
            time.sleep(0.02)
        time.sleep(0.3)
        assert [link.turns for link in links] == turns, "a calm hub waited for its quiet period"
        links[0].busy = True
        h.kick(links[0])  # a job: at once, and the others' waiting events come in the same wake-up
        assert until(lambda: all(link.read.count(b"x") == 5 for link in links), 10)
        for _ in range(3):  # pressing now: each event is a turn, no quiet period between (30 s)
            done = links[0].turns
            links[0].poke()
            assert until(lambda d=done: links[0].turns > d, 10)
    finally:
        let_go(h)
        for link in links:
            link.close()


def test_a_calm_hub_with_a_quick_link_answers_within_the_short_quiet_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """A link whose device probes often (or has not shown how often yet: ``quick``) shortens the
    calm wait of its whole hub to QUIET_QUICK_S; once no link is quick, QUIET_S again. A device
    probing every second, answered within a second, dropped the connection again and again."""
    monkeypatch.setattr(hub_module, "QUIET_S", 30.0)
    monkeypatch.setattr(hub_module, "QUIET_QUICK_S", 0.05)
    h = Hub(97)
    calm, quick = PipeLink("calm"), PipeLink("quick")
    for link in (calm, quick):
        link.busy = False
        h.kick(link)
    quick.hasty = True
    h.start()
    try:
        assert until(lambda: calm.turns >= 1 and quick.turns >= 1)
        for _ in range(3):  # the quick link's hub: each poke is read within the short period
            done = calm.turns
            calm.poke()
            assert until(lambda d=done: calm.turns > d, 10), "a hub with a quick link waited for QUIET_S"
        quick.hasty = False
        quick.poke()  # its next turn tells the hub it is no longer quick
        assert until(lambda: b"x" in quick.read, 10)
        time.sleep(0.2)  # a turn already under way may still come
        done = calm.turns
        calm.poke()
        time.sleep(0.5)
        assert calm.turns == done, "no link is quick: the hub waits for QUIET_S again"
    finally:
        let_go(h)
        calm.close()
        quick.close()


def test_a_link_that_answers_what_woke_it_is_not_turned_and_tells_if_it_is_quick(hub: Hub) -> None:
    """A device's lone echo request is answered by the link (``echoed``) with no turn: its waits
    stay registered, and whether its device probes often is taken from the answer; anything else
    that wakes it is a turn, as are a kick and a due timer."""
    link = PipeLink("echoes")
    hub.kick(link)
    assert until(lambda: link.turns == 1)
    link.answering, link.hasty = True, True
    for n in range(1, 4):
        link.poke()
        assert until(lambda n=n: link.answered == n), "the hub let the link answer"
    assert link.turns == 1 and link.read == b"xxx" and link in hub._quick
    link.hasty = False
    link.poke()
    assert until(lambda: link.answered == 4) and link not in hub._quick and link.turns == 1
    link.answering = False
    link.poke()
    assert until(lambda: link.turns == 2), "what the link does not answer is a turn"
    link.answering = True
    hub.kick(link)
    assert until(lambda: link.turns == 3) and link.answered == 4, "a kick is a turn"
    link.close()


def test_an_answer_that_moves_the_deadline_replaces_the_timer_of_the_last_turn(hub: Hub) -> None:
    """An answered echo is the device speaking: the session's probe deadline moves, and the timer
    the last turn registered must not turn the link (it did, once per probe interval per link);
    the new deadline does."""
    link = PipeLink("moved")
    link.timer_ms = 300
    hub.kick(link)
    assert until(lambda: link.turns == 1)
    link.timer_ms = None  # from now on a turn waits for no timer: only the one registered runs it
    link.answering, link.moved_to = True, ovs.timeval.msec() + 1500
    link.poke()
    assert until(lambda: link.answered == 1)
    time.sleep(0.6)
    assert link.turns == 1, "the deadline of before the answer turned the link"
    assert until(lambda: link.turns == 2, 5), "the moved deadline turns it"
    link.close()


def test_an_answer_that_leaves_the_deadline_keeps_the_timer(hub: Hub) -> None:
    link = PipeLink("kept")
    link.timer_ms = 400
    hub.kick(link)
    assert until(lambda: link.turns == 1)
    link.timer_ms, link.answering = None, True
    link.poke()
    assert until(lambda: link.answered == 1)
    assert until(lambda: link.turns == 2, 5), "the timer of the last turn still turns it"
    link.close()
