"""The webhook dispatcher (service/dispatch.py) against a receiver on loopback: signed POSTs with
the delivery's headers, retries with backoff until success or past the retry window, an attempt
that gets no answer in time, a secret that cannot be read, redirects not followed, deliveries
surviving a restart, two dispatchers on one database sending each delivery once and never twice
at the same time, bounded sends per webhook, and a webhook deleted mid-way that stops."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.service import webhooks as W
from silonet.service.dispatch import Dispatcher, backoff, outcome, read_secret, sign
from silonet.store import events
from silonet.store.db import Database
from silonet.store.tables import DeliveryRow

SECRET_ENV = "SILONET_SECRET_TEST_HOOK"
SECRET = "the-hook-secret"
FAST = {"backoff_s": (0.02, 0.1), "poll_s": 0.05}  # tests' own pace: retries come due at once


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # not 5: sixteen sends at once must not meet a full backlog


@dataclass(frozen=True)
class Got:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # perf_counter() when it arrived


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request. ``answers``: the status of the n-th
    request of a delivery (then ``status``); ``hang``: seconds to hold the first ``hang_first``
    requests before answering; ``delay``: seconds every answer waits (to see overlaps)."""

    def __init__(self, answers: tuple[int, ...] = (), status: int = 200, hang: float = 0.0, hang_first: int = 0,
                 delay: float = 0.0) -> None:
        self.answers, self.status, self.hang, self.hang_first, self.delay = answers, status, hang, hang_first, delay
        self.got: list[Got] = []
        self.cond = threading.Condition()
        self.open: Counter[str] = Counter()  # delivery id -> requests being answered now
        self.overlap = 0  # the most requests of one delivery answered at once
        self.most = 0  # the most requests answered at once
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                receiver._handle(self)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, name="test-receiver", daemon=True).start()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        delivery = h.headers.get("X-Silonet-Delivery", "")
        with self.cond:
            self.got.append(Got(h.path, {k.lower(): v for k, v in h.headers.items()}, body, time.perf_counter()))
            n, seen = len(self.got), sum(1 for g in self.got if g.headers.get("x-silonet-delivery") == delivery)
            self.open[delivery] += 1
            self.overlap = max(self.overlap, self.open[delivery])
            self.most = max(self.most, sum(self.open.values()))
            self.cond.notify_all()
        try:
            if n <= self.hang_first:
                self.released.wait(self.hang)
            if self.delay:
                time.sleep(self.delay)
            status = self.answers[seen - 1] if seen <= len(self.answers) else self.status
            h.send_response(status)
            if 300 <= status < 400:
                h.send_header("Location", "/elsewhere")
            h.send_header("Content-Length", "0")
            h.end_headers()
        except OSError:  # the dispatcher gave up on this one (timeout)
            pass
        finally:
            with self.cond:
                self.open[delivery] -= 1

    def wait_for(self, pred: Callable[[list[Got]], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.got), timeout)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def hook(m: Manager, url: str, secret: str = f"env:{SECRET_ENV}", types: list[str] | None = None) -> W.WebhookOut:
    """A webhook taking ``types`` (default: ``attachment`` only, so its own creation, an ``intent``
    event, is not one of its deliveries and each test counts only what it published)."""
    body = {"url": url, "secret": secret, "events": types or ["attachment"]}
    return W.create(m, S.validate(W.WebhookIn, body), "admin")


def publish(m: Manager, n: int, prefix: str = "n", type_: str = "attachment") -> list[int]:
    """``n`` events, committed as the reconciler's recorder commits them (its own transaction)."""
    with m.db.sessions() as s, s.begin():
        return events.publish(s, [events.Event(type_, {"network": f"{prefix}{i}", "status": "realized"})
                                  for i in range(n)])


def rows(db: Database) -> list[DeliveryRow]:
    with db.read() as s:
        return list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


def drive(dispatchers: list[Dispatcher], done: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Run the dispatchers until ``done()`` (asked in a thread: it may read the database) or ``timeout``."""
    async def run() -> bool:
        for d in dispatchers:
            await d.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await asyncio.to_thread(done):
                    return True
                await asyncio.sleep(0.02)
            return False
        finally:
            for d in dispatchers:
                await d.stop()

    return asyncio.run(run())


def all_in(db: Database, *states: str) -> Callable[[], bool]:
    return lambda: all(r.state in states for r in rows(db))


def dispatcher(m: Manager, **kw: Any) -> Dispatcher:
    return Dispatcher(m.runtime, m.settings, **{**FAST, **kw})


def counted_claims(d: Dispatcher, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one at each of ``d``'s rounds that reads the database."""
    claims: list[int] = []
    real = d._claim
    monkeypatch.setattr(d, "_claim", lambda *a: (claims.append(1), real(*a))[1])
    return claims


# ------------------------------------------------------------------------------ pure rules
def test_backoff_doubles_from_one_second_up_to_a_minute() -> None:
    assert [backoff(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff(10_000) == 60  # no overflow for a long window


def test_outcome_retries_within_the_window_then_fails() -> None:
    created = datetime(2030, 1, 1, tzinfo=UTC)
    assert outcome(True, 3, created, created + timedelta(seconds=5), 3600)[0] == "delivered"
    state, at = outcome(False, 1, created, created, 3600)
    assert (state, at) == ("pending", created + timedelta(seconds=1))
    state, at = outcome(False, 8, created, created + timedelta(seconds=3590), 3600)  # the last try: at the deadline
    assert (state, at) == ("pending", created + timedelta(seconds=3600))
    assert outcome(False, 9, created, created + timedelta(seconds=3600), 3600)[0] == "failed"


def test_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"id":1,"type":"intent"}'
    assert sign(b"k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_secret_references_are_read_inside_the_fence_only(_own_secrets_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = _own_secrets_dir / "hook-secret"
    path.write_text("from-a-file\n")
    path.chmod(0o600)
    assert read_secret(f"file:{path}", _own_secrets_dir) == b"from-a-file"  # the trailing newline is not in it
    assert read_secret(f"env:{SECRET_ENV}", _own_secrets_dir) == SECRET.encode()
    outside = tmp_path / "outside"
    outside.write_text("x")
    monkeypatch.setenv("HOME_SECRET", "nope")
    for ref, says in ((f"file:{outside}", "inside the secrets directory"), ("env:HOME_SECRET", "SILONET_SECRET_"),
                      ("env:SILONET_SECRET_UNSET_HERE", "is not set"),
                      (f"file:{_own_secrets_dir / 'missing'}", "cannot be opened")):
        with pytest.raises(Exception, match=says) as err:
            read_secret(ref, _own_secrets_dir)
        assert "nope" not in str(err.value)


# ------------------------------------------------------------------------------ delivery
@pytest.mark.parametrize("kind", ["env", "file"])
def test_a_delivery_is_a_signed_post_of_the_event(manager: Manager, receiver: Receiver, kind: str,
                                                  _own_secrets_dir: Path) -> None:
    secret, ref = SECRET, f"env:{SECRET_ENV}"
    if kind == "file":
        secret, path = "secret-in-a-file", _own_secrets_dir / "signing"
        path.write_text(secret + "\n")
        path.chmod(0o600)
        ref = f"file:{path}"
    w = hook(manager, receiver.url, ref)
    publish(manager, 1)
    assert drive([dispatcher(manager)], lambda: len(receiver.got) >= 1 and all_in(manager.db, "delivered")())
    (got,) = receiver.got
    (row,) = rows(manager.db)
    assert got.path == "/hook" and got.headers["content-type"] == "application/json"
    assert got.headers["x-silonet-event"] == "attachment" and got.headers["x-silonet-delivery"] == str(row.id)
    expected = "sha256=" + hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-silonet-signature"], expected)
    body = json.loads(got.body)
    assert body == row.body and body["type"] == "attachment" and body["network"] == "n0" and body["id"] == row.event_id
    (out,) = W.deliveries(manager, w.id)
    assert out.state == "delivered" and [a.status for a in out.attempts] == [200] and out.next_at is None
    assert secret not in json.dumps([o.model_dump(mode="json") for o in W.deliveries(manager, w.id)])


@pytest.mark.both_engines
def test_non_2xx_is_retried_with_backoff_until_delivered(manager: Manager) -> None:
    receiver = Receiver(answers=(500, 503, 404))
    try:
        w = hook(manager, receiver.url)
        publish(manager, 1)
        assert drive([dispatcher(manager)], all_in(manager.db, "delivered"))
        (out,) = W.deliveries(manager, w.id)
        assert [a.status for a in out.attempts] == [500, 503, 404, 200]
        assert [a.error for a in out.attempts] == ["HTTP 500", "HTTP 503", "HTTP 404", None]
        times = [a.time for a in out.attempts]
        assert times == sorted(times)
        assert len({g.headers["x-silonet-delivery"] for g in receiver.got}) == 1  # one delivery id for every try
    finally:
        receiver.close()


def test_retries_end_in_failed_past_the_retry_window(manager: Manager) -> None:
    receiver = Receiver(status=500)
    try:
        m = Manager(manager.runtime, replace(manager.settings, webhook_retry_s=0.3))
        w = hook(m, receiver.url)
        publish(m, 1)
        d = dispatcher(m, backoff_s=(0.05, 0.1))
        assert drive([d], all_in(m.db, "failed"))
        (out,) = W.deliveries(m, w.id)
        assert out.state == "failed" and out.next_at is None and len(out.attempts) >= 2
        assert {a.status for a in out.attempts} == {500}
        tried = len(receiver.got)
        assert drive([dispatcher(m)], lambda: False, timeout=0.5) is False  # a failed delivery is not sent again
        assert len(receiver.got) == tried
    finally:
        receiver.close()


def test_an_attempt_without_an_answer_in_time_is_retried(manager: Manager) -> None:
    receiver = Receiver(hang=5.0, hang_first=1)
    try:
        w = hook(manager, receiver.url)
        publish(manager, 1)
        assert drive([dispatcher(manager, timeout_s=0.3)], all_in(manager.db, "delivered"))
        (out,) = W.deliveries(manager, w.id)
        assert [(a.status, a.error) for a in out.attempts] == [(None, "no answer within 0.3 s"), (200, None)]
    finally:
        receiver.close()


def test_redirects_are_not_followed(manager: Manager) -> None:
    receiver = Receiver(answers=(302,))
    try:
        w = hook(manager, receiver.url)
        publish(manager, 1)
        assert drive([dispatcher(manager)], all_in(manager.db, "delivered"))
        assert [g.path for g in receiver.got] == ["/hook", "/hook"]  # never /elsewhere
        assert [a.status for a in W.deliveries(manager, w.id)[0].attempts] == [302, 200]
    finally:
        receiver.close()


def test_an_unreadable_secret_is_a_failed_attempt_saying_why(manager: Manager, receiver: Receiver,
                                                            _own_secrets_dir: Path) -> None:
    path = _own_secrets_dir / "later"
    w = hook(manager, receiver.url, f"file:{path}")
    publish(manager, 1)
    assert drive([dispatcher(manager)], lambda: bool(rows(manager.db)[0].attempts))
    first = W.deliveries(manager, w.id)[0].attempts[0]
    assert first.status is None and first.error.startswith(f"secret: {path} cannot be opened"), first
    assert receiver.got == []  # nothing unsigned was sent
    path.write_text("now-it-exists")
    path.chmod(0o600)
    assert drive([dispatcher(manager)], all_in(manager.db, "delivered"))
    assert receiver.got[0].headers["x-silonet-signature"] == sign(b"now-it-exists", receiver.got[0].body)


def test_only_the_types_a_webhook_takes_are_delivered(manager: Manager, receiver: Receiver) -> None:
    hook(manager, receiver.url, types=["gateway"])
    publish(manager, 2)
    manager.create_silo(S.validate(S.SiloIn, {"name": "s1"}))  # an intent event
    assert rows(manager.db) == []
    publish(manager, 1, type_="gateway")
    assert drive([dispatcher(manager)], all_in(manager.db, "delivered"))
    assert [g.headers["x-silonet-event"] for g in receiver.got] == ["gateway"]


def test_intent_writes_are_delivered_at_once(manager: Manager, receiver: Receiver) -> None:
    """A webhook taking every type: its own creation is its first delivery (a ping), and a write of
    this process wakes the dispatcher (``Runtime.feed``), which otherwise polls only every 30 s here."""
    w = hook(manager, receiver.url, types=["intent", "attachment", "gateway"])
    d = dispatcher(manager, poll_s=30.0)

    async def run() -> None:
        await d.start()
        try:
            assert await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1)  # the first round's
            await asyncio.to_thread(manager.create_silo, S.validate(S.SiloIn, {"name": "s1"}))
            assert await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 2)
        finally:
            await d.stop()

    asyncio.run(run())
    first, second = (json.loads(g.body) for g in receiver.got)
    assert (first["action"], first["object"]) == ("create", f"webhook/{w.id}")
    assert (second["action"], second["object"], second["silo"]) == ("create", "silo/s1", "s1")


def test_without_webhooks_commits_read_nothing_until_one_is_made(manager: Manager, receiver: Receiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No webhook: the first round reads that, and the commits of events after it (every attach makes
    some) wake no database round (they cannot have made a delivery); a webhook this process makes
    is sent its first delivery at once all the same (here the poll is 30 s)."""
    d = dispatcher(manager, poll_s=30.0)
    claims = counted_claims(d, monkeypatch)

    async def run() -> None:
        await d.start()
        try:
            for _ in range(50):  # the first round
                if claims:
                    break
                await asyncio.sleep(0.02)
            for k in range(5):
                await asyncio.to_thread(manager.create_silo, S.validate(S.SiloIn, {"name": f"s{k}"}))
                await asyncio.sleep(0.05)
            assert len(claims) == 1, "a commit of events woke a round that read the database"
            w = await asyncio.to_thread(hook, manager, receiver.url, types=["intent"])
            assert await asyncio.to_thread(receiver.wait_for, lambda got: len(got) == 1, 5.0)
            assert json.loads(receiver.got[0].body)["object"] == f"webhook/{w.id}"
        finally:
            await d.stop()

    asyncio.run(run())


def test_without_webhooks_the_count_is_read_once_each_idle_poll(manager: Manager,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No webhook anywhere: the count of webhooks is read once each ``idle_poll_s``, not at each
    ``poll_s`` (an idle manager read it twice a second for none)."""
    d = dispatcher(manager, poll_s=0.05, idle_poll_s=30.0)
    claims = counted_claims(d, monkeypatch)

    async def run() -> None:
        await d.start()
        try:
            await asyncio.sleep(1.0)  # twenty polls' worth
        finally:
            await d.stop()

    asyncio.run(run())
    assert len(claims) == 1


# ------------------------------------------------------------------------------ restarts, replicas
@pytest.mark.both_engines
def test_deliveries_survive_a_restart(manager: Manager, _own_secrets_dir: Path) -> None:
    """Published, then the dispatcher stops with the receiver still holding the first request: a new
    Dispatcher (a new process: its own Runtime) on the same database sends every delivery."""
    receiver = Receiver(hang=10.0, hang_first=1)
    try:
        hook(manager, receiver.url)
        publish(manager, 5)
        first = dispatcher(manager, per_webhook=1)  # one send at a time: the held one
        assert drive([first], lambda: len(receiver.got) >= 1) and len(receiver.got) == 1
        assert {r.state for r in rows(manager.db)} == {"pending"}
        assert all(r.claimed_until is None for r in rows(manager.db))  # the stop freed its claims
        receiver.released.set()
        again = Database(manager.db.url)
        try:
            m2 = Manager(Runtime(again), manager.settings)
            assert drive([dispatcher(m2)], all_in(again, "delivered"))
        finally:
            again.dispose()
        ids = {g.headers["x-silonet-delivery"] for g in receiver.got}
        assert ids == {str(r.id) for r in rows(manager.db)}  # each arrived (the held one twice: at least once)
    finally:
        receiver.close()


@pytest.mark.both_engines
def test_two_dispatchers_send_each_delivery_once(manager: Manager) -> None:
    receiver = Receiver(delay=0.01)
    other = Database(manager.db.url)
    try:
        hook(manager, receiver.url)
        hook(manager, receiver.url.replace("/hook", "/second"))
        publish(manager, 30)
        m2 = Manager(Runtime(other), manager.settings)
        a, b = dispatcher(manager, per_webhook=8), dispatcher(m2, per_webhook=8)
        assert drive([a, b], all_in(manager.db, "delivered"), timeout=30)
        sent = Counter(g.headers["x-silonet-delivery"] for g in receiver.got)
        assert set(sent) == {str(r.id) for r in rows(manager.db)} and len(sent) == 60
        assert set(sent.values()) == {1}, sent.most_common(3)  # once each: the claim is atomic
        assert receiver.overlap == 1
        retried = [r.attempts for r in rows(manager.db) if len(r.attempts) != 1]
        assert retried == []
    finally:
        receiver.close()
        other.dispose()


def test_sends_in_flight_per_webhook_are_bounded(manager: Manager) -> None:
    receiver = Receiver(delay=0.05)
    try:
        hook(manager, receiver.url)
        publish(manager, 12)
        assert drive([dispatcher(manager, per_webhook=2)], all_in(manager.db, "delivered"))
        assert receiver.most <= 2 and len(receiver.got) == 12
    finally:
        receiver.close()


@pytest.mark.both_engines
def test_a_webhook_deleted_mid_way_is_sent_nothing_more(manager: Manager) -> None:
    receiver = Receiver(status=500)
    try:
        w = hook(manager, receiver.url)
        publish(manager, 3)
        keep = hook(manager, receiver.url.replace("/hook", "/kept"))
        publish(manager, 1, prefix="kept")
        d = dispatcher(manager, backoff_s=(0.05, 0.05))

        async def run() -> int:
            await d.start()
            try:
                while sum(g.path == "/hook" for g in receiver.got) < 6:  # retries under way
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(W.delete_, manager, w.id, "admin")
                await asyncio.sleep(0.2)  # a send in flight at the delete may still arrive
                before = sum(g.path == "/hook" for g in receiver.got)
                await asyncio.sleep(0.5)  # ten retry periods
                return sum(g.path == "/hook" for g in receiver.got) - before
            finally:
                await d.stop()

        assert asyncio.run(asyncio.wait_for(run(), 20)) == 0
        assert {r.webhook_id for r in rows(manager.db)} == {keep.id}  # its deliveries went with it
        assert any(g.path == "/kept" for g in receiver.got)  # the other webhook is still served
    finally:
        receiver.close()


def test_a_stopped_dispatcher_leaves_nothing_running(manager: Manager, receiver: Receiver) -> None:
    hook(manager, receiver.url)
    d = dispatcher(manager)
    assert drive([d], lambda: False, timeout=0.3) is False
    assert d._task is None and d._client is None and not d._sending
