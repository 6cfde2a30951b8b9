"""One gateway's OVSDB connection: the IDL, reconnects, the write's commit, the fetch of rows the
monitor does not send (``held``).

The IDL is not thread-safe: a hub thread (``hub``) owns it and runs submitted functions on it
between ``idl.run()`` calls, like ovsdbapp's connection, but many gateways share one thread and
a write does not hold that thread while the device works: a job that commits returns a
``Commit``, finished when the answer arrives. The schema is fetched from the device (``opening``,
with the SSL identity). The link
tells of every change of the replica or of the connection through ``on_change``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import random
import select
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.reconnect
import ovs.stream
import ovs.timeval

from silonet import heap
from silonet.drivers.ovsdb import held
from silonet.drivers.ovsdb.hub import QUIET_GAP_S, Hub, Waits, hubs
from silonet.drivers.ovsdb.opening import configure_ssl, fetch_schema
from silonet.drivers.ovsdb.replica import MemoIdl
from silonet.drivers.untrusted import echo

log = logging.getLogger(__name__)

PROBE_INTERVAL_MS = 30_000  # our echo to an idle device (5 s by default: 100 gateways, 20 wake-ups a second)
# While a write is outstanding, an echo goes out after this much silence and the connection is
# dropped after as much again: a cut link fails the write within 2 x 5 s of its start, not after
# the idle probe's 60 s (the IDL's own commit_block would even wait for the reconnect). A busy
# ovsdb-server answers the echo once done with the write: 16,376 operations in one write (4,094
# networks bound on two ports) took about 5 s end to end on a loaded 2-core machine, so the
# silence allowed grows by WRITE_PROBE_PER_OP_MS per operation (that write: 5 + 16 s).
WRITE_PROBE_MS = 5_000
WRITE_PROBE_PER_OP_MS = 1.0
RECONNECT_MAX_MS = 2_000  # between connection attempts; the library's 8 s would exceed the 5 s resync bound
Txn = ovs.db.idl.Transaction


def _unconnected(session: ovs.jsonrpc.Session) -> bool:
    """Neither connected nor connecting: in backoff, or the attempt just failed."""
    return session.rpc is None and session.stream is None


@dataclass
class Commit:
    """What a job returns for a transaction it sent: the link finishes it when the device
    answers (``finish(status)`` is then the job's result), running other gateways meanwhile."""

    txn: Txn
    finish: Callable[[str], Any]


class Link:
    """One gateway's IDL, driven by a hub thread: connects (beside the hubs), reconnects, runs
    submitted functions in order, and holds at most one write outstanding (jobs wait behind it,
    as they did behind a blocking commit)."""

    def __init__(self, remote: str, on_change: Callable[[], None]) -> None:
        self.remote = remote
        self.on_change = on_change
        self.idl: MemoIdl | None = None
        self.error = ""  # why the last attempt failed ("": none did; ``why_down`` says what it waits for)
        self.hard = False  # the last first-connection attempt was refused (``Health.hard``)
        self.ssl_dir: Path | None = None  # the client identity an ssl: remote is given (use_ssl)
        # provisional row UUIDs of this IDL's transactions only: the server assigns the real ones
        self.rng = random.Random(os.urandom(16))
        self._jobs: deque[tuple[Callable[[MemoIdl], Any], concurrent.futures.Future]] = deque()
        self._hub: Hub | None = None
        self._halt = False
        self._closed: concurrent.futures.Future = concurrent.futures.Future()
        self._connecting: concurrent.futures.Future | None = None
        self._retry_at = 0.0
        self._backoff = 0.25
        self._last: tuple[int, bool] | None = None
        self._writing: tuple[Commit, concurrent.futures.Future, float] | None = None  # (write, its job, probe ms)
        self._held = threading.Lock()  # held by the hub's turn or by a worker running jobs: one at a time
        self._queued = False  # a worker is asked to run the jobs
        self._slot = False  # one of the hubs' resync slots: connecting until the replica is whole

    def __repr__(self) -> str:
        return f"Link({self.remote})"

    @property
    def connected(self) -> bool:
        """Connected and monitoring: after a reconnect, the replica holds the rows of before
        until the server's answer arrives, and a pass must not take them for the device's. A
        connection whose end (or error) the IDL just read is not: the session calls it
        disconnected only at its next run."""
        idl = self.idl
        if idl is None:
            return False
        rpc = idl._session.rpc
        return (idl.has_ever_connected() and idl._session.is_connected() and rpc is not None and not rpc.status
                and idl.state == idl.IDL_S_MONITORING)

    def why_down(self) -> str:
        """Why the link is not connected and monitoring: the reason a failure gave, else what it
        waits for (a scale run told 1,000 "disconnected" lines of links that were only queued)."""
        if self.error:
            return self.error
        idl = self.idl
        if idl is None:
            return "connecting"
        if idl._session.is_connected():
            status = idl._session.rpc.status if idl._session.rpc is not None else 0
            if status:  # read just now; the session says so at its next run
                why = "closed by the device" if status == ovs.jsonrpc.EOF else os.strerror(status)
                return f"the connection to {self.remote} ended ({why})"
            return f"connected to {self.remote}, waiting for its replica (the monitor reply)"
        if hubs().resyncs.queued(self):
            return (f"waiting its turn to connect to {self.remote} "
                    f"(at most {hubs().resyncs.size} gateway(s) resync at once)")
        if self._slot:
            return f"connecting to {self.remote}"
        return f"disconnected from {self.remote}"

    def pressing(self) -> bool:
        """A write or jobs under way, a resync (a slot held, or connected before the monitor reply),
        or a stop: what arrives is handled at once, not within the hub's QUIET_S."""
        idl = self.idl
        return (self._writing is not None or bool(self._jobs) or self._queued or self._slot or self._halt
                or (idl is not None and idl._session.is_connected() and not self.connected))

    def quick(self) -> bool:
        """Its device probes more often than every ``hub.QUIET_GAP_S``, or has not shown how often
        yet (two echoes answered): a calm hub answers it within ``hub.QUIET_QUICK_S``."""
        idl = self.idl
        gap = idl._session.echo_gap if idl is not None else None
        return gap is None or gap < QUIET_GAP_S

    def unread(self) -> bool:
        """Whether the device sent something the IDL has not read yet (any thread: a poll of the
        socket, no read). Conservative: a failure to tell says yes."""
        idl = self.idl
        rpc = idl._session.rpc if idl is not None else None
        if rpc is None:
            return False
        if rpc.input:
            return True
        try:
            ready = select.poll()
            ready.register(rpc.stream.socket, select.POLLIN)
            return bool(ready.poll(0))
        except (OSError, ValueError, TypeError, AttributeError):  # a stream closed under the call
            return True

    def queued(self) -> bool:
        """Not connected only because it waits for a resync slot, with no failure since it last was."""
        return not self.error and hubs().resyncs.queued(self)

    def use_ssl(self, gateway: Any) -> None:
        """The client identity of ``gateway``'s ssl: remote (``configure_ssl``), before ``start()``."""
        self.ssl_dir = configure_ssl(gateway)

    def start(self) -> None:
        self._hub = hubs().place(self)
        self._hub.kick(self)  # after ``_hub`` is set: the first turn may come before this returns

    def wake(self) -> None:
        if self._hub is not None:
            self._hub.kick(self)

    def submit(self, fn: Callable[[MemoIdl], Any]) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.append((fn, fut))
        if self._hub is None or self._closed.done():
            self._fail_jobs()
        else:
            self._hub.kick(self)
        return fut

    def stop(self) -> concurrent.futures.Future:
        """Close the connection; the future is done when the hub let go of it."""
        self._halt = True
        if self._hub is None:
            if not self._closed.done():
                self._closed.set_result(None)
        else:
            self._hub.kick(self)
        return self._closed

    def send(self, txn: Txn, size: int) -> str:
        """Send ``txn`` (in a job): while it is outstanding a device that stops answering ends
        the write: the IDL's probe drops the connection (WRITE_PROBE_MS + per operation), and
        the job fails with that reason instead of waiting for a reconnect."""
        idl = self.idl
        assert idl is not None
        if not self.connected:
            # Dropped since the job was handed over. ``activity`` below would move a session in
            # backoff to ACTIVE with no connection, and it would not reconnect until two probes.
            raise ConnectionError(self.why_down())
        reconnect = idl._session.reconnect
        reconnect.activity(ovs.timeval.msec())  # the silence that counts starts with the write
        reconnect.set_probe_interval(int(WRITE_PROBE_MS + WRITE_PROBE_PER_OP_MS * size))
        return txn.commit()

    # ------------------------------------------------------------ in the hub thread
    def ping(self) -> None:
        """While another link's long turn holds the hub (``Hub.keepalive``)."""
        if self._held.acquire(blocking=False):
            try:
                if self.idl is not None:
                    self.idl.ping()
            finally:
                self._held.release()

    def echoed(self, waits: Waits) -> bool:
        """Answered what woke it, a lone echo request, with no turn (``session.answer_echo``): only
        while calm and connected, with nothing of the replica or the connection left to tell.
        ``waits`` (what its last turn registered) takes the deadline the answer moved (the session's
        probe, counted from the device's last word), as a turn would register it: else each link
        was turned once per probe interval for nothing (33 turns a second at 1,000 gateways)."""
        idl = self.idl
        if (idl is None or self._writing is not None or self._jobs or self._queued or self._slot or self._halt
                or idl.txn is not None or idl.unchecked or self._last != (idl.change_seqno, True)):
            return False
        if not self._held.acquire(blocking=False):
            return False
        try:
            if not (self.connected and idl._session.answer_echo()):
                return False
            now = Waits()
            idl.wait(now)
            if now.fds != waits.fds:  # not what a calm link waits for: its turn registers it
                return False
            waits.until = now.until
            return True
        finally:
            self._held.release()

    def turn(self, waits: Waits) -> bool:
        if not self._held.acquire(blocking=False):
            return True  # a job runs on the IDL; its worker hands the link back when done (``_work``)
        try:
            return self._turn(waits)
        finally:
            self._held.release()

    def _turn(self, waits: Waits) -> bool:
        if self._halt:
            self._close()
            return False
        if self.idl is None and not self._connected_now(waits):
            return True
        idl = self.idl
        assert idl is not None
        session = idl._session
        if not self._slot and _unconnected(session) and \
                session.reconnect.run(ovs.timeval.msec()) == ovs.reconnect.CONNECT:
            if not hubs().resyncs.take(self):
                self._hand_jobs()  # they find the link disconnected, as they would anyway
                return True  # woken when a slot is this link's (``hub.Resyncs``)
            self._slot = True
        try:
            # no collection while the turn reads: a message's parsed JSON lives until its update is in
            # the replica, and collections in between walked it (a first replica's are 10,000s of
            # objects); what the turn left (the replica's new rows, mostly) is frozen, never walked
            with heap.paused():
                idl.run()
                self._note()
                self._settle()
                self._fetch()  # its answer, like a write's, goes into the replica within a later run
                heap.freeze_young()
            self._hand_jobs()
            idl.wait(waits)
        except Exception as err:  # the library choked on what the device sent: start over
            self._drop(f"{self.remote}: {echo(err)}", waits)
            return True
        if self._slot and (self.connected or _unconnected(session)):
            self._let_go()  # the replica is whole, or the attempt failed: the next link's turn
        if self._writing is not None:
            self._writing[0].txn.wait(waits)
        return True

    def _hand_jobs(self) -> None:
        if self._jobs and self._writing is None and not self._queued:
            self._queued = True  # turned meanwhile: echoes are answered while the job waits its turn
            hubs().work(self._work)

    def _let_go(self) -> None:
        """Give back the resync slot, or the place in its queue."""
        resyncs = hubs().resyncs
        if self._slot:
            self._slot = False
            resyncs.give()
        resyncs.forget(self)

    def _work(self) -> None:
        """The queued jobs, in a worker thread, holding the IDL (the hub skips the link meanwhile)."""
        with self._held:
            self._queued = False
            if self._halt or not self.connected:  # no IDL, or a replica of before: no reading
                self._fail_jobs()
            else:
                self._run_jobs()
        assert self._hub is not None
        self._hub.kick(self)  # the next turn tells of what the jobs changed (``_note``)

    def _connected_now(self, waits: Waits) -> bool:
        """Connecting: one attempt at a time beside the hubs, retried with backoff."""
        if self._connecting is None:
            if ovs.timeval.msec() < self._retry_at:
                waits.timer_wait_until(self._retry_at)
                return False
            hub = self._hub
            assert hub is not None
            self._connecting = hubs().connect(self._open)
            self._connecting.add_done_callback(lambda _f: hub.kick(self))
            return False
        if not self._connecting.done():
            return False
        attempt, self._connecting = self._connecting, None
        try:
            self.idl = attempt.result()
        except Exception as err:
            self.error = echo(err)  # any tcp:/unix: peer's words reach the gateway's status
            self.hard = isinstance(err, ConnectionRefusedError)
            self._fail_jobs()
            self._retry_later(waits)
            return False
        self.error, self.hard, self._backoff, self._last = "", False, 0.25, None
        return True

    def _open(self) -> MemoIdl:
        helper = fetch_schema(self.remote)
        idl = MemoIdl(self.remote, helper, probe_interval=PROBE_INTERVAL_MS, leader_only=False)
        idl._session.reconnect.set_backoff(1000, RECONNECT_MAX_MS)
        idl.on_keepalive = self._keepalive
        return idl

    def _keepalive(self) -> None:
        if self._hub is not None:
            self._hub.keepalive(self)

    def _drop(self, reason: str, waits: Waits) -> None:
        log.warning("ovsdb %s", reason)
        self.error = reason
        self._end_write(ConnectionError(reason))
        self._fail_jobs()
        self._let_go()
        if self.idl is not None:
            with contextlib.suppress(Exception):
                self.idl.close()
        self.idl, self._last = None, None
        self._retry_later(waits)
        self.on_change()

    def _retry_later(self, waits: Waits) -> None:
        """The next connection attempt after the backoff, which doubles up to RECONNECT_MAX_MS
        (a connection that comes up resets it)."""
        self._retry_at = ovs.timeval.msec() + self._backoff * 1000
        self._backoff = min(self._backoff * 2, RECONNECT_MAX_MS / 1000)
        waits.timer_wait_until(self._retry_at)

    def _close(self) -> None:
        self._end_write(ConnectionError("connection closed"))
        self._fail_jobs()
        self._let_go()
        if self._connecting is not None:  # an attempt in flight: close what it opens
            self._connecting.add_done_callback(lambda f: f.exception() or f.result().close())
        if self.idl is not None:
            self.idl.close()
        if not self._closed.done():
            self._closed.set_result(None)

    def _settle(self) -> None:
        """Finish the outstanding write once the device answered (or the connection went)."""
        if self._writing is None:
            return
        commit, fut, probe = self._writing
        status = commit.txn.commit()
        if status == Txn.INCOMPLETE:
            assert self.idl is not None
            if self.idl._session.is_connected():
                return
            self.error = (f"lost the connection to {self.remote} during a write "
                          f"(closed, or no answer for {probe / 1000:g} s): reconnecting")
            self._end_write(ConnectionError(self.error))
            return
        self._end_write(None)
        try:
            result = commit.finish(status)
        except BaseException as err:
            fut.set_exception(err)
            return
        del commit  # the write goes before its waiter wakes (its transaction, a reply of a thousand UUIDs)
        fut.set_result(result)

    def _fetch(self) -> None:
        """Rows of ``HELD`` tables that rows just read refer to and the replica lacks (another
        writer's), fetched before any job reads the replica: the jobs wait behind the fetch as
        behind a write."""
        idl = self.idl
        if idl is None or not idl.unchecked or self._writing is not None or idl.txn is not None or not self.connected:
            return
        wanted = idl.missing()
        if not wanted:
            return
        txn, asked = held.fetch(idl, wanted)
        idl.asking(asked)
        txn.on_success = lambda done: idl.hold(held.fetched(done, asked))
        log.info("ovsdb %s: fetching %d row(s) another writer inserted", self.remote, len(asked))
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()
        self.send(txn, len(asked))
        self._writing = (Commit(txn, lambda status: status), fut, idl._session.reconnect.get_probe_interval())
        self._settle()

    def _end_write(self, error: Exception | None) -> None:
        if self._writing is None:
            return
        _commit, fut, _probe = self._writing
        self._writing = None
        if self.idl is not None:
            self.idl._session.reconnect.set_probe_interval(PROBE_INTERVAL_MS)
        if error is not None:
            fut.set_exception(error)

    def _note(self) -> None:
        """Tell of a changed replica or connection; keeps the reason a job gave for dropping it."""
        assert self.idl is not None
        now = (self.idl.change_seqno, self.connected)
        last = self._last
        if now != last:
            if last is None or now[1] != last[1]:
                self.idl.forget()
            if now[1]:
                self.error = ""  # else a failure's reason stays (``why_down``)
            self._last = now
            self.on_change()

    def _fail_jobs(self) -> None:
        while self._jobs:
            _fn, fut = self._jobs.popleft()
            if fut.set_running_or_notify_cancel():
                fut.set_exception(ConnectionError(self.error or "connection closed"))

    def _run_jobs(self) -> None:
        """In order, until one leaves a write outstanding (the next waits for its answer)."""
        while self._jobs and self._writing is None:
            fn, fut = self._jobs.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                out = fn(self.idl)
            except BaseException as err:
                fut.set_exception(err)
                continue
            if isinstance(out, Commit):
                probe = self.idl._session.reconnect.get_probe_interval() if self.idl is not None else 0
                self._writing = (out, fut, probe)
                self._settle()  # UNCHANGED, or a send that failed: final already
            else:
                fut.set_result(out)
