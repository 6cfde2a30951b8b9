"""Redundant pairs from the CLI (a subprocess on the local store, as a user runs it): the second
member created with ``--pair`` and the pair's anycast address, a third refused in one line, and
``silonet gateway list`` and ``silonet status`` showing the pair."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import silonet

ANYCAST = "198.18.0.120"


def create(datadir: Path, name: str, last: int, *extra: str):  # type: ignore[no-untyped-def]
    return silonet(datadir, "gateway", "create", name, "--vtep-ip", ANYCAST, "--address", f"tcp:198.18.1.{last}:6640",
                   "--silo", "kvm-b", "--port", "p1", *extra)


def test_members_made_with_pair_and_a_third_refused(datadir: Path) -> None:
    assert create(datadir, "gw-pa", 121, "--pair", "kp").returncode == 0
    p = create(datadir, "gw-pb", 122)
    assert p.returncode == 1 and p.stderr.startswith("error: vtep_ip: vtep_ip 198.18.0.120 already belongs to "
                                                      "gateway 'gw-pa'"), p.stderr
    p = create(datadir, "gw-pb", 122, "--pair", "kp", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pair"] == "kp"
    p = create(datadir, "gw-pc", 123, "--pair", "kp")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "pair: pair 'kp' has 2 members already ('gw-pa', 'gw-pb')" in p.stderr
    listed = silonet(datadir, "gateway", "list").stdout
    assert "pair" in listed, listed  # a pair column, only where there are pairs
    row = next(ln for ln in listed.splitlines() if "gw-pa" in ln)
    assert "kp" in row and ANYCAST in row, row
    status = silonet(datadir, "status").stdout
    assert "kp" in next(ln for ln in status.splitlines() if "gw-pb" in ln), status
