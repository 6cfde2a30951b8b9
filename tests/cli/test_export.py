"""`silonet export` through the real command: YAML that `silonet apply -f` takes back with no
changes, `--set` for one apply set, `--json`, on the local store and against a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silonet.bench.fleet import Server
from silonet.cli.export import as_yaml, compact
from tests.service.test_export_property import intents
from tests.support.cli import EXAMPLE, silonet

LAB = "networks:\n  - {name: lab-1, tenant: lab, attachments: [{interface_group: pad, vlan: 42}]}\n"


def run(datadir: Path, *args: str, **env: str) -> str:
    p = silonet(datadir, *args, **env)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_export_prints_the_yaml_apply_takes_back(datadir: Path, tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text(LAB)
    run(datadir, "apply", "-f", str(tmp_path / "lab.yaml"), "--set", "lab")
    run(datadir, "network", "create", "hand", "--tenant", "acme")
    text = run(datadir, "export")
    data = yaml.safe_load(text)
    assert {n["name"]: n["apply_set"] for n in data["networks"]} == {"cust-42": "default", "cust-43": "default",
                                                                     "hand": "", "lab-1": "lab"}
    assert "apply_set: ''" in text and "{interface_group: vsa, vlan: 100, apply_set: default}" in text
    assert "switchback: false" not in text and "dialect:" not in text  # the inputs' defaults are left out
    (tmp_path / "export.yaml").write_text(text)
    assert run(datadir, "apply", "-f", str(tmp_path / "export.yaml"), "--dry-run").strip() == "no changes"
    assert run(datadir, "apply", "-f", str(tmp_path / "export.yaml")).strip() == "no changes"
    assert run(datadir, "export") == text

    full = json.loads(run(datadir, "export", "--json"))  # every field, as the API answers
    assert full["gateways"][0]["management"]["dialect"] is None
    assert yaml.safe_load(run(datadir, "export", "--set", "lab")) == {
        "networks": [{"name": "lab-1", "tenant": "lab", "vni": data["networks"][3]["vni"], "apply_set": "lab",
                      "attachments": [{"interface_group": "pad", "vlan": 42, "apply_set": "lab"}]}]}


def test_apply_with_a_set_refuses_an_export_of_several(datadir: Path, tmp_path: Path) -> None:
    (tmp_path / "export.yaml").write_text(run(datadir, "export"))
    p = silonet(datadir, "apply", "-f", str(tmp_path / "export.yaml"), "--set", "other")
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert lines[0] == ("error: silos[baremetal-c].apply_set: 'default' is not the apply set this apply names "
                        "('other'): when an apply names a set with --set, each object's apply_set is absent or that "
                        "set; apply without a set to keep each object's own")
    assert lines[-1] == "error: and 14 more problem(s)"


def test_a_bad_set_name(datadir: Path) -> None:
    p = silonet(datadir, "export", "--set", "-x")
    assert p.returncode == 1 and p.stderr.startswith("error: set: "), p.stderr


FUZZ = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24)


@FUZZ
@given(intent=intents(), text=PRINTABLE)
def test_the_yaml_is_what_pyyaml_prints(intent: dict[str, Any], text: str) -> None:
    """``as_yaml`` writes the YAML itself (PyYAML's representer is slow): the text PyYAML prints for
    names, addresses and descriptions (its quoting, YAML 1.1's booleans and numbers)."""
    for silo in intent["silos"]:
        silo["description"] = text
    assert as_yaml(intent) == yaml.dump(compact(intent), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                                        sort_keys=False, default_flow_style=None, allow_unicode=True, width=1_000_000)


@FUZZ
@given(intent=intents(), text=st.text(max_size=24))
def test_the_yaml_reads_back_whatever_the_strings(intent: dict[str, Any], text: str) -> None:
    """Any string, in a flow mapping or as a block mapping's value: line breaks, tabs, controls,
    unicode line and paragraph separators, quotes, indicators."""
    for obj in intent["silos"] + intent["gateways"]:
        obj["description" if "kind" in obj else "silo"] = text
    assert (yaml.safe_load(as_yaml(intent)) or {}) == compact(intent)


@pytest.mark.slow
def test_export_from_a_server_into_a_local_store(tmp_path: Path) -> None:
    server = Server(tmp_path / "server", reconcile=False).start()
    remote = {"SILONET_SERVER": server.url, "SILONET_TOKEN": server.token}
    try:
        run(tmp_path, "apply", "-f", str(EXAMPLE), **remote)
        (tmp_path / "lab.yaml").write_text(LAB)
        run(tmp_path, "apply", "-f", str(tmp_path / "lab.yaml"), "--set", "lab", **remote)
        text = run(tmp_path, "export", **remote)
        (tmp_path / "export.yaml").write_text(text)
        assert run(tmp_path, "apply", "-f", str(tmp_path / "export.yaml"), **remote).strip() == "no changes"
        local = tmp_path / "local"
        assert "applied 21 change(s)" in run(local, "apply", "-f", str(tmp_path / "export.yaml"))
        assert run(local, "export") == text  # the local store now holds the server's intent, sets and all
        (tmp_path / "lab-export.yaml").write_text(run(local, "export", "--set", "lab"))
        assert run(tmp_path, "apply", "-f", str(tmp_path / "lab-export.yaml"), "--set", "lab", "--prune",
                   **remote).strip() == "no changes"
    finally:
        server.stop()
