"""``silonet gateway mode NAME MODE`` and ``silonet gateway patch NAME PATCH``: on the local store
(a subprocess, as a user runs it) and through a server (the RemoteBackend against the app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from silonet.cli.backend import RemoteBackend, RemoteError
from silonet.service import Manager
from tests.support.cli import silonet


def test_mode_on_the_local_store(datadir: Path) -> None:
    p = silonet(datadir, "gateway", "mode", "gw-a", "observe")
    assert p.returncode == 0, p.stderr
    assert "observe" in p.stdout and "gw-a" in p.stdout
    p = silonet(datadir, "status", "gw-a", "--json")
    st = json.loads(p.stdout)
    assert (st["mode"], st["state"], st["pending_operations"]) == ("observe", "held", None)
    p = silonet(datadir, "status")
    row = next(ln for ln in p.stdout.splitlines() if "gw-a" in ln)
    assert "held" in row and "observe" in row and "pending ops" in p.stdout
    p = silonet(datadir, "plan")
    assert "gw-a: 3 operation(s)" in p.stdout, p.stdout
    assert "(observe mode: held back until `silonet gateway mode gw-a enforce`)" in p.stdout
    p = silonet(datadir, "attachment", "list", "--json")
    assert {(a["interface_group"], a["status"]) for a in json.loads(p.stdout)["items"]} >= {("vsa", "held")}
    p = silonet(datadir, "audit", "--limit", "1")
    assert "gateway.mode" in p.stdout and "gateway/gw-a" in p.stdout


@pytest.mark.parametrize(("args", "line"), [
    (("gateway", "mode", "gw-a", "on"), "error: mode: 'on': mode must be one of enforce, observe, maintenance"),
    (("gateway", "mode", "gw-z", "observe"), "error: name: gateway 'gw-z' does not exist"),
    (("gateway", "patch", "gw-a", "{nope"), "error: PATCH: not JSON: "),
    (("gateway", "patch", "gw-a", "[1]"), "error: PATCH: a merge patch of a gateway is a JSON object (RFC 7396)"),
    (("gateway", "patch", "gw-a", '{"name": "gw-x"}'), "error: name: cannot change"),
    (("gateway", "patch", "gw-b", '{"capacity": 1}'), "error: capacity: gateway 'gw-b' over capacity"),
])
def test_a_refused_change_is_one_line_and_a_non_zero_exit(datadir: Path, args: tuple[str, ...], line: str) -> None:
    p = silonet(datadir, *args)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.startswith(line) and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert silonet(datadir, "audit", "--limit", "1", "--json").stdout.count("gateway.") == 0


def test_patch_on_the_local_store(datadir: Path) -> None:
    p = silonet(datadir, "gateway", "patch", "gw-b", '{"capacity": 64, "mode": "maintenance"}', "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["capacity"], out["mode"]) == (64, "maintenance")
    p = silonet(datadir, "gateway", "patch", "gw-b", '{"capacity": null, "mode": null}', "--json")
    assert (json.loads(p.stdout)["capacity"], json.loads(p.stdout)["mode"]) == (4096, "enforce")


def _remote(client: Any) -> RemoteBackend:
    remote = RemoteBackend("http://testserver", None)
    remote.http = client  # the TestClient is an httpx client on the app
    return remote


def test_mode_through_a_server(client: Any, seeded: Manager) -> None:
    remote = _remote(client)
    out = remote.patch_gateway("gw-c", {"mode": "maintenance"})
    assert out["mode"] == "maintenance" and seeded.get_gateway("gw-c").mode == "maintenance"
    assert remote.status("gw-c")["state"] == "held"
    with pytest.raises(RemoteError) as err:
        remote.patch_gateway("gw-c", {"mode": "later"})
    assert err.value.field == "mode" and "(HTTP 422)" in err.value.message
