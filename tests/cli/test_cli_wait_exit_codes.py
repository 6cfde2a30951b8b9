"""Every ``--wait`` (attach, detach, network delete, apply) exits with the status it reached:
0 realized, 1 failed, 3 degraded or held, 4 still pending. The real command on a local store
whose realization records the test writes (no reconciler runs there), and the remote backend
against the API for the DELETEs, whose status comes in headers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from silonet.cli.backend import RemoteBackend
from silonet.service import Manager
from silonet.store.db import Database
from silonet.store.repo import Observation, Repository
from tests.support.cli import EXAMPLE
from tests.support.cli import silonet as run

EVERY = ("gw-a", "gw-b", "gw-c", "gw-d")
AHEAD = 10**9  # a realized generation beyond any the test makes
DOWN = "cannot connect to 198.18.1.3:6640: connection refused"


def silonet(datadir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(datadir, *args, columns=300)


def record(datadir: Path, realized: tuple[str, ...] = (), down: tuple[str, ...] = ()) -> None:
    """Realization records as a reconciler would write them: ``realized`` reached every generation,
    ``down`` is unreachable with an error."""
    db = Database(f"sqlite:///{datadir / 'silonet.db'}")
    try:
        with db.write() as (s, _gen):
            repo = Repository(s)
            for gw in realized:
                repo.record(gw, Observation(reachable=True, realized_generation=AHEAD, error=None))
            for gw in down:
                repo.record(gw, Observation(reachable=False, realized_generation=None, error=DOWN))
    finally:
        db.dispose()


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    p = silonet(d, "apply", "-f", str(EXAMPLE))
    assert p.returncode == 0, p.stderr
    return d


def test_still_pending_when_the_wait_ends_exits_4(datadir: Path) -> None:
    p = silonet(datadir, "attach", "cust-43", "pad", "7", "--wait", "0.2")
    assert p.returncode == 4, (p.stdout, p.stderr)
    assert "pending" in p.stdout and "silonet serve" in p.stdout  # why: no reconciler runs
    p = silonet(datadir, "attach", "cust-43", "pad", "8")  # no --wait: the request succeeded
    assert p.returncode == 0, p.stderr


def test_realized_exits_0(datadir: Path) -> None:
    record(datadir, realized=EVERY)
    p = silonet(datadir, "attach", "cust-42", "vsa", "101", "--wait", "5")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "realized" in p.stdout
    p = silonet(datadir, "detach", "cust-42", "vsa", "101", "--wait", "5")
    assert p.returncode == 0 and "detached vsa VLAN 101 from cust-42" in p.stdout and "realized" in p.stdout


def test_a_failed_own_gateway_exits_1_and_an_unreachable_peer_3(datadir: Path) -> None:
    record(datadir, realized=("gw-a", "gw-b", "gw-d"), down=("gw-c",))
    p = silonet(datadir, "attach", "cust-42", "bmc", "302", "--wait", "5")  # bmc is on gw-c
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "failed" in p.stdout and "gw-c" in p.stdout and "198.18.1.3" in p.stdout
    p = silonet(datadir, "attach", "cust-42", "kvb", "2101", "--wait", "5")  # forwards on gw-b; gw-c is a peer
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "degraded" in p.stdout and "gw-c" in p.stdout
    p = silonet(datadir, "detach", "cust-42", "kvb", "2101", "--wait", "5")
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "degraded" in p.stdout and "gw-c" in p.stdout
    p = silonet(datadir, "network", "delete", "cust-43", "--cascade", "--wait", "5")  # gw-b, gw-d: fine
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = silonet(datadir, "network", "delete", "cust-42", "--cascade", "--wait", "5")  # gw-c carried it
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "deleted network cust-42" in p.stdout and "failed" in p.stdout and "gw-c" in p.stdout


def test_apply_wait_counts_and_names_the_failed_gateways(datadir: Path, tmp_path: Path) -> None:
    record(datadir, realized=("gw-a", "gw-c"), down=("gw-b", "gw-d"))
    more = EXAMPLE.read_text().replace("{interface_group: pad, vlan: 0}",
                                       "{interface_group: pad, vlan: 0}\n      - {interface_group: pad, vlan: 9}")
    more = more.replace("{interface_group: bmc, vlan: 300}",
                        "{interface_group: bmc, vlan: 300}\n      - {interface_group: kvb, vlan: 9}")
    (tmp_path / "more.yaml").write_text(more)
    p = silonet(datadir, "apply", "-f", str(tmp_path / "more.yaml"), "--wait", "5")
    assert p.returncode == 1, (p.stdout, p.stderr)
    changed = 4  # kvb/9 joins cust-42 (gw-a, gw-b, gw-c), pad/9 cust-43 (gw-b, gw-d)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("failed"))
    assert line.startswith(f"failed on 2 of {changed} gateway(s): ")
    assert "'gw-b'" in line and "'gw-d'" in line and "'gw-a'" not in line and "198.18.1.3" in line
    p = silonet(datadir, "apply", "-f", str(tmp_path / "more.yaml"), "--wait", "5", "--json")
    assert p.returncode == 0  # nothing changed: nothing to wait for


def _remote(client: Any) -> RemoteBackend:
    remote = RemoteBackend("http://testserver", None)
    remote.http = client  # the TestClient is an httpx client on the app
    return remote


def _record(m: Manager, realized: tuple[str, ...] = (), down: tuple[str, ...] = ()) -> None:
    with m.db.write() as (s, _gen):
        repo = Repository(s)
        for gw in realized:
            repo.record(gw, Observation(reachable=True, realized_generation=AHEAD, error=None))
        for gw in down:
            repo.record(gw, Observation(reachable=False, realized_generation=None, error=DOWN + " ünïcode\r\nx"))


@pytest.mark.parametrize(("call", "status", "named"), [
    (lambda r: r.detach("cust-42", "kvb", 2100, 5), "degraded", True),
    (lambda r: r.detach("cust-42", "bmc", 300, 5), "failed", True),
    (lambda r: r.delete_network("cust-43", True, 5), "realized", False),
    (lambda r: r.delete_network("cust-42", True, 5), "failed", True),
    (lambda r: r.detach("cust-42", "kvb", 2100, None), None, False),
])
def test_remote_deletes_say_the_status_reached(client: Any, seeded: Manager, call: Callable[[RemoteBackend], Any],
                                               status: str | None, named: bool) -> None:
    _record(seeded, realized=("gw-a", "gw-b", "gw-d"), down=("gw-c",))
    done = call(_remote(client))
    if status is None:
        assert done is None
        return
    assert done["status"] == status
    if named:  # the device's error comes through the header whole (percent-encoded on the way)
        assert "gateway 'gw-c': " + DOWN + " ünïcode\r\nx" in done["reason"]
    else:
        assert done["reason"] is None
