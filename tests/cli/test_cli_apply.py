"""`silonet apply` with apply sets, the prune guard, field diffs and warnings, through the real
command (a subprocess on a local store)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import EXAMPLE, silonet

LAB = "networks:\n  - {name: lab-1, tenant: lab, attachments: [{interface_group: pad, vlan: 42}]}\n"


def write(datadir: Path, name: str, text: str) -> str:
    path = datadir / name
    path.write_text(text)
    return str(path)


def test_an_empty_file_prune_is_refused_then_forced(datadir: Path) -> None:
    empty = write(datadir, "empty.yaml", "")
    p = silonet(datadir, "apply", "-f", empty, "--prune")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    [line] = p.stderr.splitlines()
    assert line.startswith(
        "error: prune: refused for apply set 'default': it would delete 19 objects (5 attachments, 2 networks, "
        "4 interface groups, 4 gateways, 4 silos) and the file declares nothing; check the file and --set, or pass "
        "--force"), line
    p = silonet(datadir, "apply", "-f", empty, "--prune", "--dry-run")
    assert p.returncode == 1, p.stderr  # what the real apply would do
    assert "would apply 19 change(s)" in p.stdout
    for name in ("cust-42/vsa/100", "cust-43", "vsa", "gw-d", "paas-d"):
        assert name in p.stdout
    assert "the guard would refuse this prune of apply set 'default'" in p.stdout
    p = silonet(datadir, "network", "list", "--json")
    assert {n["name"] for n in json.loads(p.stdout)} == {"cust-42", "cust-43"}  # nothing deleted
    p = silonet(datadir, "apply", "-f", empty, "--prune", "--force")
    assert p.returncode == 0, p.stderr
    assert "applied 19 change(s)" in p.stdout and "done because of --force" in p.stdout
    assert json.loads(silonet(datadir, "network", "list", "--json").stdout) == []


def test_two_sets_and_a_direct_network(datadir: Path) -> None:
    lab = write(datadir, "lab.yaml", LAB)
    p = silonet(datadir, "apply", "-f", lab, "--set", "lab")
    assert p.returncode == 0 and "applied 2 change(s)" in p.stdout, p.stderr
    assert silonet(datadir, "network", "create", "hand", "--tenant", "lab").returncode == 0
    empty = write(datadir, "empty.yaml", "")
    p = silonet(datadir, "apply", "-f", empty, "--set", "lab", "--prune")
    assert p.returncode == 1 and "it would delete 2 objects (1 attachment, 1 network)" in p.stderr
    p = silonet(datadir, "apply", "-f", empty, "--set", "lab", "--prune", "--force")
    assert p.returncode == 0, p.stderr
    networks = {n["name"] for n in json.loads(silonet(datadir, "network", "list", "--json").stdout)}
    assert networks == {"cust-42", "cust-43", "hand"}
    p = silonet(datadir, "apply", "-f", lab, "--set", "-bad")
    assert p.returncode == 1 and p.stderr.startswith("error: set: '-bad' must"), p.stderr


def test_dry_run_shows_each_field_and_warns(datadir: Path) -> None:
    edited = write(datadir, "edited.yaml", EXAMPLE.read_text().replace("vni: 5000", "vni: 5100").replace(
        "{interface_group: bmc, vlan: 300}", "{interface_group: bmc, vlan: 301}"))
    p = silonet(datadir, "apply", "-f", edited, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "vni: 5000 -> 5100" in p.stdout
    warnings = p.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
    assert "its VNI changes 5000 -> 5100" in warnings[0]
    assert warnings[1].endswith("the old attachment (bmc, 300) stays; --prune removes it")
    p = silonet(datadir, "apply", "-f", edited, "--dry-run", "--json")
    out = json.loads(p.stdout)
    assert {"action": "update", "kind": "network", "name": "cust-42", "fields": {"vni": [5000, 5100]}} in out["changes"]
    assert len(out["warnings"]) == 2
