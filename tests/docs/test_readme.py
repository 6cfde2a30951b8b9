"""The README's examples run as written (only scratch paths and the port are swapped)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_readme_opens_with_the_two_commands() -> None:
    first = blocks("sh")[0]
    assert first.splitlines()[:2] == [
        "./run demo     # on a fresh Debian machine as root: installs what is missing, runs the main job",
        "./run test     # the whole test suite",
    ]


def test_cli_walkthrough(tmp_path: Path) -> None:
    script = next(b for b in blocks("sh") if "silonet apply -f examples/topology.yaml" in b)
    result = run(script.replace("/tmp/silonet-readme", str(tmp_path / "data")), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout
    assert "detached bmc VLAN 301 from cust-43" in result.stdout


def test_apply_sets_walkthrough(tmp_path: Path) -> None:
    """The worked example of apply sets: two sets, a hand-made network, the guard, --force."""
    script = next(b for b in blocks("sh") if "--set lab" in b)
    data = tmp_path / "data"
    result = run(script.replace("/tmp/silonet-sets", str(data)), tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "the old attachment (pad, 42) stays; --prune removes it" in out
    assert "prune of apply set 'lab' deletes 1 object (1 attachment); the file declares 2 objects" in out
    assert "the guard would refuse this prune of apply set 'lab'" in out
    assert "error: prune: refused for apply set 'lab': it would delete 2 objects (1 attachment, 1 network) and the " \
           "file declares nothing" in out
    assert out.count("exit 1") == 2
    listed = run(f". .venv/bin/activate && SILONET_DATA_DIR={data} silonet network list --json", tmp_path)
    assert sorted(n["name"] for n in json.loads(listed.stdout)) == ["cust-42", "cust-43", "scratch"]


def test_example_topology_in_readme_is_valid(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(blocks("yaml")[0])
    script = f". .venv/bin/activate && SILONET_DATA_DIR={tmp_path} silonet apply -f {tmp_path / 't.yaml'}"
    result = run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "attach" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_curl_examples(tmp_path: Path) -> None:
    script = next(b for b in blocks("sh") if "curl" in b and "serve" in b)
    port = _free_port()
    script = script.replace("8081", str(port)).replace("/tmp/silonet-api", str(tmp_path / "data"))
    result = run(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"vni":5000' in result.stdout
    assert '"error":"invalid","field":"vlan"' in result.stdout


def test_dialect_table_lists_every_registered_dialect() -> None:
    from silonet.drivers.ssh.dialect import dialects

    section = README.split("### SSH gateways", 1)[1].split("\n### ", 1)[0]  # the dialect table's section
    listed = set(re.findall(r"^\| `([a-z]+)` \|", section, flags=re.M))
    assert listed == set(dialects())
