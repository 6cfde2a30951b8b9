"""The event stream's rows (store/events.py), on SQLite and PostgreSQL: ids follow commit order
(a reader polling while writers race never sees an id before one lower than it, so resuming
after the last id seen never skips one), intent events name what the audit entry names, and
pruning keeps both the newest N and the last hours."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from silonet.config import Settings
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store import events
from silonet.store.db import Database
from silonet.store.tables import EventRow

WRITERS, EACH = 4, 15


def test_ids_follow_commit_order_while_writers_race(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    manager = Manager(Runtime(db), Settings(database_url=db.url, vni_pool=range(10000, 10500)))
    done = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def write(w: int) -> None:
        for i in range(EACH):
            manager.create_network(S.NetworkIn(name=f"n{w}-{i}", tenant="t"))

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            with db.read() as s:
                ids = list(s.execute(select(EventRow.id).where(EventRow.id > last).order_by(EventRow.id)).scalars())
            if ids and ids != list(range(last + 1, last + 1 + len(ids))):
                problems.append(f"after {last} the reader saw {ids[:5]}...: an id before a lower one committed")
            seen.extend(ids)
            last = ids[-1] if ids else last
            if finished:
                return

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert not problems, problems
    assert seen == list(range(1, WRITERS * EACH + 1))
    with db.read() as s:
        data = [d for (d,) in s.execute(select(EventRow.data).order_by(EventRow.id))]
        assert {d["action"] for d in data} == {"create"} and all(d["network"].startswith("n") for d in data)
        assert all(d["vni"] >= 10000 for d in data)
    db.dispose()


def test_prune_keeps_the_newest_and_the_recent(database_url: str) -> None:
    db = Database(database_url)
    db.upgrade()
    with db.sessions() as s, s.begin():
        events.publish(s, [events.Event("intent", {"n": i}) for i in range(10)])
        old = datetime.now(UTC) - timedelta(hours=30)
        s.execute(update(EventRow).where(EventRow.id <= 6).values(time=old))  # 1..6 are a day and more old
    with db.sessions() as s, s.begin():
        assert events.prune(s, keep_hours=24, keep=7) == 3  # 1..3: old and beyond the newest 7
    with db.sessions() as s, s.begin():
        assert events.oldest_id(s) == 4 and events.last_id(s) == 10
        assert events.prune(s, keep_hours=24, keep=1) == 3  # 4..6 old; 7..9 recent stay
        assert events.oldest_id(s) == 7
    db.dispose()
