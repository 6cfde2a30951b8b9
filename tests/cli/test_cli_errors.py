"""Bad input through the real `silonet` command (a subprocess on a local store): exit code
not 0, exactly one `error:` line on stderr naming the field and the rule, no traceback, and
the database exactly as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from silonet.store.db import Database
from silonet.store.tables import Base

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "topology.yaml"


def silonet(datadir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SILONET_") and k != "FORCE_COLOR"}
    env["SILONET_DATA_DIR"] = str(datadir)
    env["SILONET_CONFIG"] = str(datadir / "cli-config.json")  # never the runner's own `silonet login`
    return subprocess.run([sys.executable, "-m", "silonet.cli.main", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)


def rows(datadir: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the CLI's store (as conftest's ``snapshot`` does)."""
    db = Database(f"sqlite:///{datadir}/silonet.db")
    try:
        with db.engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t.name} ORDER BY 1"))]
                for t in Base.metadata.sorted_tables
            }
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir after the first `silonet apply -f examples/topology.yaml` (run once)."""
    datadir = tmp_path_factory.mktemp("template") / "data"
    p = silonet(datadir, "apply", "-f", str(EXAMPLE))
    assert p.returncode == 0, p.stderr
    assert "applied 19 change(s)" in p.stdout
    return datadir


@pytest.fixture
def datadir(seeded_template: Path, tmp_path: Path) -> Path:
    """A private copy of the seeded store."""
    return Path(shutil.copytree(seeded_template, tmp_path / "data"))


def assert_one_error(p: subprocess.CompletedProcess[str], *words: str) -> str:
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, line
    return line


SMALL_GATEWAY = """\
gateways:
  - name: gw-t
    vtep_ip: 198.18.0.60
    management: {driver: ovsdb, address: "tcp:198.18.1.60:6640"}
    capacity: 4
    ports: [{name: p1}]
interface_groups:
  - {name: tg, members: [{gateway: gw-t, port: p1}]}
networks:
  - name: tn
    tenant: t
    attachments:      # capacity 4: the 5th does not fit, so none may be stored
      - {interface_group: tg, vlan: 1}
      - {interface_group: tg, vlan: 2}
      - {interface_group: tg, vlan: 3}
      - {interface_group: tg, vlan: 4}
      - {interface_group: tg, vlan: 5}
"""



@pytest.mark.parametrize(("args", "file", "words"), [
    pytest.param(["attach", "cust-42", "bmc", "4095"], None, ("vlan", "4095", "0..4094"), id="vlan-4095"),
    pytest.param(["attach", "cust-42", "bmc", "x"], None, ("vlan", "'x'", "not an integer"), id="vlan-x"),
    pytest.param(["attach", "cust-42", "bmc", "-1"], None, ("vlan", "-1", "0..4094"), id="vlan--1"),
    pytest.param(["network", "create", "n1", "--tenant", "t", "--vni", "0"], None, ("vni", "0", "1..16777215"),
                 id="vni-0"),
    pytest.param(["group", "create", "g9", "--member", "gw-b:p1"], None,
                 ("gw-b:p1", "already belongs to interface group 'kvb'"), id="port-in-two-groups"),
    pytest.param(["apply", "-f", "{dir}/missing.yaml"], None,
                 ("file", "cannot read", "missing.yaml", "No such file"), id="apply-missing-file"),
    pytest.param(["apply", "-f", "{file}"], "silos:\n  - {name: a\n  - b: [\n",
                 ("file", "{file}:3:6", "not valid YAML"), id="apply-yaml-syntax"),
    pytest.param(["apply", "-f", "{file}"], "- silos\n- gateways\n", ("file", "top level must be a mapping"),
                 id="apply-top-level-list"),
    pytest.param(["apply", "-f", "{file}"], "silos: []\nswitches: []\n", ("{file}", "switches: unknown field"),
                 id="apply-unknown-field"),
    pytest.param(["apply", "-f", "{file}"], "silos:\n  - {name: s1, kind: [kvm]}\n",
                 ("{file}", "silos[s1].kind", "'vsphere'"), id="apply-wrong-type"),
    pytest.param(["apply", "-f", "{file}"], "silos:\n  - {name: s1}\n  - {name: s2}\n  - {name: s1}\n",
                 ("silos", "names must be unique", "s1"), id="apply-duplicate-name"),
    pytest.param(["apply", "-f", "{file}"], SMALL_GATEWAY,
                 ("gw-t", "over capacity", "needs 1", "only 0 of 4", "in use by interface group 'tg'"),
                 id="apply-over-capacity"),
    pytest.param(["--server", "http://127.0.0.1:9", "network", "create", "n1", "--tenant", "t"], None,
                 ("cannot reach the server", "http://127.0.0.1:9"), id="server-unreachable"),
])
def test_cli_rejects(datadir, tmp_path, args, file, words):
    path = tmp_path / "topology.yaml"
    if file is not None:
        path.write_text(file)
    fmt = {"dir": tmp_path, "file": path}
    before = rows(datadir)
    p = silonet(datadir, *(a.format(**fmt) for a in args))
    assert_one_error(p, *(w.format(**fmt) for w in words))
    assert rows(datadir) == before


def test_apply_twice_says_no_changes(datadir):
    before = rows(datadir)
    p = silonet(datadir, "apply", "-f", str(EXAMPLE))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "no changes"
    assert p.stderr == ""
    after = rows(datadir)
    # meta holds the global generation, which every write transaction bumps (see
    # test_apply_same_topology_again_writes_nothing in tests/api): compare everything else.
    assert {k: v for k, v in after.items() if k != "meta"} == {k: v for k, v in before.items() if k != "meta"}
