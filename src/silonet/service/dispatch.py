"""The webhook dispatcher: sends the delivery rows store/events.publish wrote (README, "Webhooks").

It runs in every serving process (api/app.py's lifespan, beside the reconciler). Deliveries are
rows, so they survive a restart and any replica may send them. A replica claims due rows in one
statement: an UPDATE of rows whose claim (``claimed_until``) is free, chosen by a subquery that is
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer anyway), so two replicas never send
one delivery at the same time. A claim lasts ``LEASE_S``, far longer than an attempt may, and an
attempt is recorded only while its claim still holds. Delivery is at least once: a process that
stops between the POST and its recording leaves the row to be sent again, so receivers drop repeats
by ``X-Silonet-Delivery``.

The secret is read at each attempt (``read_secret``: the credentials fence of drivers/secrets.py)
and only signs: it is never stored, logged or put in an attempt's error. The dispatcher wakes at
once when this process commits events (``Runtime.feed``) and reads the database every ``POLL_S``
for other processes' events and for retries that came due; while the database has no webhook at
all, only every ``IDLE_POLL_S`` (a webhook another process makes is found that late; one this
process makes, at once). Everything is bounded: rows per claim, sends in flight per webhook and in
all, the time of one attempt, the attempts kept per delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import bindparam, func, or_, select, update

from silonet import __version__
from silonet.drivers import secrets
from silonet.errors import DeviceError
from silonet.model import rules
from silonet.store.tables import DeliveryRow, WebhookRow

if TYPE_CHECKING:
    from silonet.config import Settings
    from silonet.runtime import Runtime

log = logging.getLogger("silonet.webhooks")

BATCH = 50  # rows claimed by one statement
PER_WEBHOOK = 4  # sends in flight to one webhook from this process
IN_FLIGHT = 64  # sends in flight from this process
POLL_S = 0.5  # other replicas' events, retries come due
# no webhook at all: the next read of their count (an idle manager polled twice a second for none)
IDLE_POLL_S = 5.0
TIMEOUT_S = 5.0  # one attempt, connecting to answering
LEASE_S = 30.0  # a claim: far longer than an attempt
BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 60.0
ATTEMPTS_KEPT = 100  # the newest attempts of a delivery (a long SILONET_WEBHOOK_RETRY_S makes many)
ERROR_MAX = 300
STOP_S = 5.0  # a stop waits this long for a claim under way
D = DeliveryRow.__table__
_HOOKS = select(func.count()).select_from(WebhookRow.__table__)


class SecretUnavailable(Exception):
    """The webhook's secret cannot be read now: the attempt fails, saying why (never the value)."""


def read_secret(ref: str, secrets_dir: Path) -> bytes:
    """The value ``ref`` names, read now, inside the fence gateway credentials have
    (``rules.credentials_violation``, ``drivers/secrets.py``); a file's trailing newline is not part of it."""
    if (rule := rules.credentials_violation(ref, secrets_dir)) is not None:
        raise SecretUnavailable(rule)
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise SecretUnavailable(f"environment variable {ref[4:]} is not set or empty")
        return value.encode()
    try:
        path = secrets.fenced_path(ref, "webhook", secrets_dir)
        data = secrets.read_secret(path, "webhook").rstrip(b"\r\n")
    except DeviceError as err:  # its reason names the file and the rule, never the content
        raise SecretUnavailable(str(err.fields.get("reason", "")).removeprefix("credentials: ")) from None
    if not data:
        raise SecretUnavailable(f"{path} is empty")
    return data


def sign(key: bytes, body: bytes) -> str:
    """The ``X-Silonet-Signature`` of ``body`` (the exact bytes POSTed)."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def backoff(attempts: int, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``first``, doubling, at most ``cap``."""
    return min(cap, first * 2 ** min(attempts - 1, 32))


def outcome(ok: bool, attempts: int, created: datetime, now: datetime, window_s: float,
            first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> tuple[str, datetime]:
    """A delivery's state and next try after its ``attempts``-th attempt: delivered; or tried again
    after the backoff, the last time at the end of the retry window; past that window, failed."""
    if ok:
        return "delivered", now
    deadline = created + timedelta(seconds=window_s)
    if now >= deadline:
        return "failed", now
    return "pending", min(now + timedelta(seconds=backoff(attempts, first, cap)), deadline)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


@dataclass(frozen=True)
class Claimed:
    """A delivery this process claimed (``claim``: its ``claimed_until``, ours while it is unchanged)."""

    id: int
    webhook_id: int
    event_type: str
    body: dict[str, Any]
    attempts: list[dict[str, Any]]
    created: datetime
    claim: datetime
    url: str
    secret: str


class Dispatcher:
    """Sends this database's due deliveries from this process, beside any other replica's."""

    def __init__(self, runtime: Runtime, settings: Settings, *, timeout_s: float = TIMEOUT_S,
                 poll_s: float = POLL_S, idle_poll_s: float = IDLE_POLL_S,
                 backoff_s: tuple[float, float] = (BACKOFF_FIRST_S, BACKOFF_MAX_S),
                 per_webhook: int = PER_WEBHOOK, in_flight: int = IN_FLIGHT, batch: int = BATCH,
                 lease_s: float = LEASE_S) -> None:
        self.db = runtime.db
        self.feed = runtime.feed
        self.secrets_dir = settings.secrets_dir
        self.window_s = settings.webhook_retry_s
        self.timeout_s, self.poll_s, self.idle_poll_s, self.lease_s = timeout_s, poll_s, idle_poll_s, lease_s
        self.backoff_s = backoff_s
        self.per_webhook, self.in_flight, self.batch = per_webhook, in_flight, batch
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._client: httpx.AsyncClient | None = None
        self._kick: asyncio.Event | None = None
        self._sending: dict[asyncio.Task, Claimed] = {}
        self._busy: Counter[int] = Counter()  # webhook id -> sends in flight
        self._soonest: datetime | None = None  # the earliest retry this process scheduled
        # When a claim last found no webhook at all (monotonic time, the feed's count of webhooks
        # made; None: there were some). For ``idle_poll_s`` after, the rounds that this process's commits
        # of events wake read nothing (they cannot have made a delivery), unless this process made a
        # webhook since; another process's webhook is found by the next read of the count, at most
        # ``idle_poll_s`` later.
        self._none_since: tuple[float, int] | None = None

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.timeout_s, follow_redirects=False, headers={"User-Agent": f"silonet/{__version__}"},
            limits=httpx.Limits(max_connections=self.in_flight, max_keepalive_connections=self.in_flight))
        self._kick = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook-dispatch")

    async def stop(self) -> None:
        """Stop claiming, cancel the sends in flight and free their claims (they are sent again, by
        this database's next dispatcher: at least once)."""
        task, self._task = self._task, None
        self._stopping = True
        if self._kick is not None:
            self._kick.set()
        if task is not None:  # a claim under way ends first (cancelled, its rows would wait out LEASE_S)
            await asyncio.wait({task}, timeout=STOP_S)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = list(self._sending.values())
        for t in list(self._sending):
            t.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if left:
            try:
                await asyncio.to_thread(self._release, left)
            except Exception as err:  # their claims lapse after LEASE_S instead
                log.warning("webhook deliveries: could not free %d claim(s) on stop: %s", len(left), err)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ loop
    async def _run(self) -> None:
        assert self._kick is not None
        failing = False
        while not self._stopping:
            self._kick.clear()
            seq = self.feed.seq()
            more = False
            try:
                more = await self._round()
                failing = False
            except Exception as err:  # the database is away: try again at the next poll, say so once
                if not failing:
                    log.warning("webhook deliveries: cannot claim: %s", err)
                failing = True
            if not more and not self._stopping:
                await self._nap(seq)

    async def _nap(self, seq: int) -> None:
        """Until this process commits events, a send ends (room for more), a retry it scheduled comes
        due, or ``poll_s`` passed (``idle_poll_s`` while there was no webhook)."""
        assert self._kick is not None
        nap = self.poll_s
        if self._none_since is not None:  # no webhook: nothing to send until one is made
            nap = self._none_since[0] + self.idle_poll_s - time.monotonic()
        if self._soonest is not None:
            nap = min(nap, (self._soonest - datetime.now(UTC)).total_seconds())
            if nap <= 0:  # due now: the round after this one claims it
                self._soonest = None
        if self._kick.is_set() or nap <= 0:
            return
        waits = {asyncio.ensure_future(self._kick.wait()), asyncio.ensure_future(self.feed.wait_async(seq, nap))}
        try:
            await asyncio.wait(waits, timeout=nap, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _round(self) -> bool:
        """Claim what is due and start sending it; True when more may be due right away."""
        room = min(self.in_flight - len(self._sending), self.batch)
        if room <= 0:
            return False
        if (none := self._none_since) is not None and none[1] == self.feed.webhooks_made and \
                time.monotonic() - none[0] < self.idle_poll_s:
            return False
        full = sorted(h for h, n in self._busy.items() if n >= self.per_webhook)
        claimed = await asyncio.to_thread(self._claim, room, full, len(self._sending))
        surplus = []
        for d in claimed:
            if self._busy[d.webhook_id] >= self.per_webhook:
                surplus.append(d)  # one batch held more of one webhook than it may have in flight
            else:
                self._start(d)
        if surplus:
            await asyncio.to_thread(self._release, surplus)
        return len(claimed) == room and not surplus

    def _start(self, d: Claimed) -> None:
        self._busy[d.webhook_id] += 1
        task = asyncio.create_task(self._deliver(d), name=f"webhook-delivery-{d.id}")
        self._sending[task] = d
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        d = self._sending.pop(task)
        self._busy[d.webhook_id] -= 1
        if self._busy[d.webhook_id] <= 0:
            del self._busy[d.webhook_id]
        if self._kick is not None:
            self._kick.set()  # room for another

    # ------------------------------------------------------------------ rows
    def _claim(self, limit: int, full: list[int], in_flight: int) -> list[Claimed]:
        """Due rows nobody holds, claimed by this process in one statement (at most as many as the
        webhooks may still take from it)."""
        with self.db.sessions() as s, s.begin():
            asked = (time.monotonic(), self.feed.webhooks_made)
            hooks = s.connection().execute(_HOOKS).scalar() or 0  # Core: the one statement while there is none
            self._none_since = asked if not hooks else None
            limit = min(limit, hooks * self.per_webhook - in_flight)
            if limit <= 0:
                return []
            now = datetime.now(UTC)
            until = now + timedelta(seconds=self.lease_s)
            free = or_(D.c.claimed_until.is_(None), D.c.claimed_until < now)
            due = select(D.c.id).where(D.c.state == "pending", D.c.next_at <= now, free)
            if full:
                due = due.where(D.c.webhook_id.not_in(full))
            due = due.order_by(D.c.next_at, D.c.id).limit(limit).with_for_update(skip_locked=True)
            rows = s.execute(update(D).where(D.c.id.in_(due.scalar_subquery()), free).values(claimed_until=until)
                             .returning(D.c.id, D.c.webhook_id, D.c.event_type, D.c.body, D.c.attempts,
                                        D.c.created)).all()
            if not rows:
                return []
            targets = {h.id: h for h in s.execute(select(WebhookRow.id, WebhookRow.url, WebhookRow.secret)
                                                  .where(WebhookRow.id.in_({r.webhook_id for r in rows})))}
        return [Claimed(r.id, r.webhook_id, r.event_type, r.body, list(r.attempts or []), _utc(r.created), until,
                        targets[r.webhook_id].url, targets[r.webhook_id].secret)
                for r in sorted(rows, key=lambda r: r.id) if r.webhook_id in targets]

    def _release(self, claimed: list[Claimed]) -> None:
        """Free claims that are still ours: the rows are due again at once."""
        q = (update(D).where(D.c.id == bindparam("d_id"), D.c.claimed_until == bindparam("d_claim"))
             .values(claimed_until=None))
        with self.db.sessions() as s, s.begin():
            s.execute(q, [{"d_id": d.id, "d_claim": d.claim} for d in claimed])

    def _record(self, d: Claimed, attempt: dict[str, Any], ok: bool) -> datetime | None:
        """The attempt and what follows from it (delivered, again later, failed), if the claim is
        still ours (else the webhook was deleted, or the claim lapsed and another took it); when it is
        tried again."""
        now = datetime.now(UTC)
        attempts = [*d.attempts, attempt][-ATTEMPTS_KEPT:]
        state, next_at = outcome(ok, len(d.attempts) + 1, d.created, now, self.window_s, *self.backoff_s)
        q = (update(D).where(D.c.id == d.id, D.c.claimed_until == d.claim)
             .values(state=state, attempts=attempts, next_at=next_at, claimed_until=None))
        with self.db.sessions() as s, s.begin():
            if not s.execute(q).rowcount:
                return None
        if state == "failed":
            log.warning("webhook %d: delivery %d (event %d) failed after %d attempt(s); last: %s", d.webhook_id,
                        d.id, d.body.get("id", 0), len(d.attempts) + 1, attempt["error"])
        return next_at if state == "pending" else None

    # ------------------------------------------------------------------ sending
    async def _deliver(self, d: Claimed) -> None:
        started, t0 = datetime.now(UTC), time.monotonic()
        try:
            status, error = await self._post(d)
            attempt = {"time": started.isoformat(), "status": status, "error": error,
                       "ms": round((time.monotonic() - t0) * 1000)}
            again = await asyncio.to_thread(self._record, d, attempt, status is not None and 200 <= status < 300)
            if again is not None and (self._soonest is None or again < self._soonest):
                self._soonest = again
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the database: the claim lapses, the row is tried again
            log.warning("webhook %d: delivery %d: cannot record the attempt: %s", d.webhook_id, d.id, err)

    async def _post(self, d: Claimed) -> tuple[int | None, str | None]:
        """One POST: the receiver's status (None: no answer) and what went wrong (None: a 2xx)."""
        try:
            key = read_secret(d.secret, self.secrets_dir)
        except SecretUnavailable as err:
            return None, f"secret: {err}"[:ERROR_MAX]
        body = encode(d.body)
        headers = {"Content-Type": "application/json", "X-Silonet-Event": d.event_type,
                   "X-Silonet-Delivery": str(d.id), "X-Silonet-Signature": sign(key, body)}
        assert self._client is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client.stream("POST", d.url, content=body, headers=headers) as r:
                    status = r.status_code  # the body is never read: a receiver cannot make it large
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {self.timeout_s:g} s"
        except Exception as err:  # connection refused, DNS, TLS, a URL httpx refuses: the attempt's error
            return None, (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)[:ERROR_MAX]
        return status, None if 200 <= status < 300 else f"HTTP {status}"[:ERROR_MAX]
