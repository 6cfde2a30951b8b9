"""Reading a topology file: a JSON object by JSON's rules, anything else (a broken JSON document
included) by YAML's, which names the problem; and with the cyclic collector paused
(``heap.paused``) and put back as it was found, after a failure too: the document's objects form
no cycles, and the collector walking them and the CLI's imports again and again was half of the
reading of a 4,094-network file."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from silonet.errors import InvalidInput
from silonet.service import topology
from silonet.service.topology import parse_topology


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the collector ran while each document was read."""
    seen: list[bool] = []
    real = topology.yaml.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(topology.yaml, "load", spy)
    return seen


def test_a_topology_is_read_with_the_collector_paused_and_put_back(collector_seen: list[bool]) -> None:
    assert gc.isenabled()
    assert parse_topology("networks: []").networks == []
    with pytest.raises(InvalidInput, match=r"t\.yaml:2:1: not valid YAML"):
        parse_topology("networks: [", "t.yaml")
    with pytest.raises(InvalidInput, match="networks"):
        parse_topology("networks: 3", "t.yaml")
    assert collector_seen == [False, False, False] and gc.isenabled()


def test_a_collector_switched_off_before_stays_off(collector_seen: list[bool]) -> None:
    gc.disable()
    try:
        parse_topology("networks: []")
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert collector_seen == [False]


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"
NET = '{"networks": [{"name": "n1", "tenant": "t", "vni": %s}]}'


def test_a_json_topology_is_read_as_json_into_the_same_topology(collector_seen: list[bool]) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    from_yaml = parse_topology(EXAMPLE.read_text(), "example.yaml")
    collector_seen.clear()
    assert parse_topology(json.dumps(doc, indent=2), "example.json") == from_yaml
    assert parse_topology("  \n" + json.dumps(doc)) == from_yaml
    assert collector_seen == [], "the JSON documents never reached the YAML loader"


def test_json_rules_hold_where_yaml_reads_a_scalar_otherwise(collector_seen: list[bool]) -> None:
    """``1e3`` is a number in JSON and the string "1e3" in YAML 1.1: a JSON document's is a number,
    which is no name."""
    assert parse_topology("networks: [{name: 1e3, tenant: t}]").networks[0].name == "1e3"
    with pytest.raises(InvalidInput, match=r"networks\[0\]\.name"):
        parse_topology('{"networks": [{"name": 1e3, "tenant": "t"}]}')
    assert collector_seen == [False]


@pytest.mark.parametrize("text, words", [
    ('{"networks": [}', r"t\.json:1:15: not valid YAML"),  # broken JSON: YAML's words, with the place
    (NET % "NaN", "vni"),  # no JSON: YAML reads a string, which is no VNI
    (NET % "Infinity", "vni"),
    ('{"networks": [{"name": "\udcff", "tenant": "t"}]}', "not UTF-8 text"),  # an undecodable byte from stdin
])
def test_what_is_not_json_goes_to_the_yaml_loader_and_its_errors(text: str, words: str,
                                                                 collector_seen: list[bool]) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_topology(text, "t.json")


def test_a_yaml_flow_mapping_is_still_yaml(collector_seen: list[bool]) -> None:
    assert parse_topology("{networks: [{name: n1, tenant: t}]}").networks[0].name == "n1"
    assert collector_seen == [False]
