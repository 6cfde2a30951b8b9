"""What the reconciler tells waiters in its own process after recording: realized generations
(monotonic) and errors, so ``Manager.wait`` needs no query to see a change through."""

from __future__ import annotations

import threading

from silonet.service import Manager
from silonet.signals import RealizationBoard
from silonet.store.repo import Observation, Repository


def test_realized_generations_only_grow_and_errors_are_dated() -> None:
    board = RealizationBoard()
    assert not board.realized_here(["gw-a"], 1)
    seq = board.seq()
    board.recorded({"gw-a": 5, "gw-b": 3})
    board.recorded({"gw-a": 4})  # an older pass finishing late does not move it back
    assert board.realized_here(["gw-a"], 5) and board.realized_here(["gw-a", "gw-b"], 3)
    assert not board.realized_here(["gw-a", "gw-b"], 4) and not board.realized_here(["gw-c"], 0)
    assert not board.failed_since(["gw-a"], seq)
    board.recorded(failed=["gw-b"])
    assert board.failed_since(["gw-a", "gw-b"], seq) and not board.failed_since(["gw-b"], board.seq())
    assert board.wait(board.seq(), 0.01) is False


def test_wait_sees_this_processes_recordings_and_the_databases_errors(seeded: Manager) -> None:
    db, board = seeded.db, seeded.board
    gws = sorted(seeded.inventory().gateways)[:2]
    timer = threading.Timer(0.2, board.recorded, args=({g: 10**9 for g in gws},))
    timer.start()
    assert seeded.wait(gws, 10**9, 5) == "realized"
    timer.join()

    def fail() -> None:
        with db.status_session() as s:
            Repository(s).record(gws[0], Observation(reachable=False, realized_generation=None, error="refused"))
            s.commit()
        board.recorded(failed=[gws[0]])

    timer = threading.Timer(0.2, fail)
    timer.start()
    assert seeded.wait(gws, 10**9 + 1, 5) == "failed"
    timer.join()


def test_wait_asks_the_database_first_unless_this_process_knows_better(seeded: Manager) -> None:
    """A gateway whose error another process (or an earlier run) recorded fails a wait at once;
    gateways this process saw realized, and never failing, are waited for without a query."""
    from sqlalchemy import event

    db, board = seeded.db, seeded.board
    gws = sorted(seeded.inventory().gateways)[:2]
    with db.status_session() as s:
        Repository(s).record(gws[0], Observation(reachable=False, realized_generation=None, error="refused"))
        s.commit()
    assert seeded.wait(gws, 10**9, 5) == "failed"  # nothing recorded here: the database tells

    queries: list[str] = []

    def count(*args: object) -> None:
        queries.append(str(args[2]))

    board.recorded({gws[1]: 10**9})
    timer = threading.Timer(0.05, board.recorded, args=({gws[1]: 10**9 + 1},))
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        timer.start()
        assert seeded.wait([gws[1]], 10**9 + 1, 5) == "realized"
        assert queries == []
    finally:
        timer.join()
        event.remove(db.engine, "before_cursor_execute", count)
