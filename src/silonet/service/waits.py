"""Waiting for realization (``?wait=``, ``--wait``): until the status of a change leaves
``pending`` (plan/status.py says what it is), or the time is up; the answer is the status
reached then, with its reason.

The decisions live in one generator (``_steps``), driven without a thread per waiter on the
API's event loop (``wait_async``) and blocking in the CLI's local store (``wait``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Generator, Iterable
from typing import Any

import anyio

from silonet.plan.status import Seen, Verdict, gateway_status, summarize
from silonet.service.auth import errors_for
from silonet.signals import RealizationBoard
from silonet.store.db import Database
from silonet.store.repo import Repository

WAIT_MAX_S = 300.0
REALIZED = Verdict("realized")


Own = Collection[str] | Callable[[], Collection[str]] | None


def verdict(db: Database, names: list[str], generation: int, own: Own = None, tenant: str | None = None) -> Verdict:
    """The status of a change at ``generation`` on ``names``, as the database has it
    (``own``: the gateways whose failure fails it, the others only degrade it; a function giving
    them is asked only here, so a wait this process's board ends asks nothing)."""
    if callable(own):
        own = own()
    with db.read() as s:
        real = errors_for(Repository(s).realizations(names, observed=False), tenant)
    seen = [Seen(n, *gateway_status(r := real.get(n), generation, None, "enforce" if r is None else r.mode),
                 pair=None if r is None else r.pair) for n in names]
    return summarize(seen, own, tenant=tenant is not None)


def wait(db: Database, board: RealizationBoard, gateways: Iterable[str], generation: int, timeout: float,
         own: Own = None, tenant: str | None = None) -> Verdict:
    """Block up to ``timeout`` s until the change at ``generation`` is no longer pending (``board``:
    what this process's reconciler recorded)."""
    steps = _steps(board, gateways, generation, timeout)
    try:
        step = next(steps)
        while True:
            step = steps.send(verdict(db, step[1], generation, own, tenant) if step[0] == "ask"
                              else board.wait(step[1], step[2]))
    except StopIteration as done:
        return done.value


async def wait_async(db: Database, board: RealizationBoard, gateways: Iterable[str], generation: int,
                     timeout: float, own: Own = None, tenant: str | None = None) -> Verdict:
    """``wait`` for the API: the waiting holds no thread (a thread per waiter let a few dozen
    ``?wait=`` requests exhaust the pool every sync route shares); only a database read
    borrows one for its duration."""
    steps = _steps(board, gateways, generation, timeout)
    try:
        step = next(steps)
        while True:
            if step[0] == "ask":
                answer: Verdict | bool = await anyio.to_thread.run_sync(verdict, db, step[1], generation, own, tenant)
            else:
                answer = await board.wait_async(step[1], step[2])
            step = steps.send(answer)
    except StopIteration as done:
        return done.value


def _steps(board: RealizationBoard, gateways: Iterable[str], generation: int,
           timeout: float) -> Generator[tuple[Any, ...], Verdict | bool, Verdict]:
    """The decisions of a wait, without its I/O: yields ``("ask", names)`` to read the verdict
    from the database (send it back) and ``("sleep", seq, seconds)`` to wait for a status change
    after ``seq`` (send back whether one came); returns the verdict."""
    names = sorted(set(gateways))
    bound = 0.0 if math.isnan(timeout) else min(max(timeout, 0.0), WAIT_MAX_S)  # NaN: every compare is false
    deadline = time.monotonic() + bound
    # The database: at first (unless this process's reconciler drives them all and none
    # ever failed here), after a poll timeout (another process may have written), at the
    # deadline, or when this process recorded an error for one of them; otherwise what this
    # process's reconciler recorded tells enough.
    ask = not board.healthy_here(names)
    while True:
        seq = board.seq()
        if board.realized_here(names, generation):  # no query
            return REALIZED
        if ask or time.monotonic() >= deadline:
            state = yield ("ask", names)
            assert isinstance(state, Verdict)
            if state.status != "pending" or time.monotonic() >= deadline:
                return state
        # woken by this process's reconciler at once; another process's within 0.1 s. Where one
        # of them failed (here or ever), realized_here cannot end the wait: the database tells
        # when the status left pending (e.g. degraded: its own realized, a peer still failed).
        woke = yield ("sleep", seq, min(0.1, max(deadline - time.monotonic(), 0.0)))
        ask = not woke or board.failed_since(names, seq) or not board.healthy_here(names)
