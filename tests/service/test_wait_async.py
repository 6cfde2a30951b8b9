"""``Manager.wait_async`` (the API's ``?wait=``) decides as ``Manager.wait`` does, and waits on
the event loop: the reconciler's thread wakes it through the loop, so a waiter holds no thread
and needs no query to see this process's recordings."""

from __future__ import annotations

import threading

import anyio
from sqlalchemy import event

from silonet.service import Manager
from silonet.store.repo import Observation, Repository


def _record_error(manager: Manager, gateway: str) -> None:
    with manager.db.status_session() as s:
        Repository(s).record(gateway, Observation(reachable=False, realized_generation=None, error="refused"))
        s.commit()


def test_the_same_answers_as_the_blocking_wait(seeded: Manager) -> None:
    board = seeded.board
    gws = sorted(seeded.inventory().gateways)[:2]
    assert anyio.run(seeded.wait_async, gws, 10**9, 0.3) == "pending" == seeded.wait(gws, 10**9, 0.3)
    assert anyio.run(seeded.wait_async, [], 10**9, 5) == "realized" == seeded.wait([], 10**9, 5)

    timer = threading.Timer(0.2, board.recorded, args=({g: 10**9 for g in gws},))
    timer.start()
    assert anyio.run(seeded.wait_async, gws, 10**9, 5) == "realized"
    timer.join()

    def fail() -> None:
        _record_error(seeded, gws[0])
        board.recorded(failed=[gws[0]])

    timer = threading.Timer(0.2, fail)
    timer.start()
    assert anyio.run(seeded.wait_async, gws, 10**9 + 1, 5) == "failed"
    timer.join()
    assert seeded.wait(gws, 10**9 + 1, 5) == "failed"


def test_many_waiters_one_thread_woken_without_a_query(seeded: Manager) -> None:
    """Fifty waiters with a thread pool of one, all woken by one recording made in another
    thread; gateways this process saw realized (and never failing) need no query."""
    db, board = seeded.db, seeded.board
    gw = sorted(seeded.inventory().gateways)[0]
    board.recorded({gw: 10**9})
    queries: list[str] = []

    def count(*args: object) -> None:
        queries.append(str(args[2]))

    results: list[str] = []

    async def main() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1

        async def one() -> None:
            results.append(await seeded.wait_async([gw], 10**9 + 1, 30))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
            await anyio.sleep(0.05)  # every waiter parked
            await anyio.to_thread.run_sync(board.recorded, {gw: 10**9 + 1})

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        anyio.run(main)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert results == ["realized"] * 50
    assert queries == []
