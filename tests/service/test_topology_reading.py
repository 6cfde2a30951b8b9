"""Reading a topology file pauses the cyclic collector (``heap.paused``) and puts it back as it
found it, after a failure too: the document's objects form no cycles, and the collector walking
them and the CLI's imports again and again was half of the reading of a 4,094-network file."""

from __future__ import annotations

import gc
from typing import Any

import pytest

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
