"""``silonet events``: the local store's stream (a subprocess, as a user runs it) and a server's
(the RemoteBackend against the app): JSON lines in id order, resuming after ``--after``, a line per
event by default, and a pruned position as one error line with exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from silonet.cli.backend import RemoteBackend
from silonet.service import Manager
from silonet.store.db import Database
from silonet.store.tables import EventRow
from tests.support.cli import silonet


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_local_store_follows_and_resumes(datadir: Path) -> None:
    p = silonet(datadir, "events", "--after", "0", "--timeout", "0.5", "--json")
    assert p.returncode == 0, p.stderr
    seeded = lines(p.stdout)
    assert seeded and all(e["event"] == "intent" for e in seeded)  # the example topology's apply
    ids = [e["id"] for e in seeded]
    assert ids == sorted(ids) == list(range(ids[0], ids[0] + len(ids)))
    assert silonet(datadir, "network", "create", "extra", "--tenant", "t1", "--vni", "9999").returncode == 0
    p = silonet(datadir, "events", "--after", str(ids[-1]), "--limit", "1", "--json")
    new = lines(p.stdout)
    assert len(new) == 1 and new[0]["data"]["object"] == "network/extra" and new[0]["data"]["vni"] == 9999
    p = silonet(datadir, "events", "--after", str(ids[-1]), "--limit", "1")
    assert p.returncode == 0 and "intent" in p.stdout and "create network/extra" in p.stdout, p.stdout


def test_a_position_no_longer_kept_is_one_error_line(datadir: Path) -> None:
    db = Database(f"sqlite:///{datadir / 'silonet.db'}")
    with db.sessions() as s, s.begin():
        s.execute(delete(EventRow).where(EventRow.id <= 3))
    db.dispose()
    p = silonet(datadir, "events", "--after", "1", "--timeout", "0.5")
    assert p.returncode == 1 and "no longer kept" in p.stdout and "/v1/export" in p.stdout, (p.stdout, p.stderr)


def test_through_a_server(client: Any, seeded: Manager) -> None:
    remote = RemoteBackend("http://testserver", None)
    remote.http = client  # the TestClient is an httpx client on the app
    got = list(remote.events(0, 3, 2.0))
    assert [e["event"] for e in got] == ["intent"] * 3 and [e["id"] for e in got] == [1, 2, 3]
    assert got[0]["data"]["id"] == 1
