"""The compile benchmark runs on small fleets and reports sane figures (never judged on time)."""

from __future__ import annotations

import json

from silonet.bench import compile as bench
from silonet.bench.synthetic import build_inventory


def test_incremental_restores_the_inventory_and_touches_one_group() -> None:
    inv = build_inventory(20, attachments=100)
    before = (dict(inv.attachments), dict(inv.networks), {n: inv.gateways_of_network(n) for n in inv.networks})
    result = bench.incremental(inv, repetitions=3)
    assert (dict(inv.attachments), dict(inv.networks), {n: inv.gateways_of_network(n) for n in inv.networks}) == before
    assert result.gateways == 20 and result.affected_gateways == 10
    # Per gateway: the new logical switch, its flood list and the one binding.
    assert result.operations == 3 * 10
    assert result.median_ms > 0


def test_full_compile_in_a_child_process() -> None:
    full = bench.full_compile(20, attachments=400, runs=2)
    assert (full.gateways, full.groups, full.attachments) == (20, 2, 400)
    assert full.networks == 200  # two groups, one block: one network per VLAN index
    assert full.bindings == full.logical_switches == 20 * 200  # one switch-back entry per VLAN per gateway
    assert full.compile_full_s > 0 and full.build_s > 0
    assert 0 < full.inventory_rss_mib <= full.compile_peak_rss_mib < 2048


def test_quick_measure_is_complete_and_json_ready() -> None:
    result = bench.measure(quick=True, repetitions=3)
    out = json.loads(json.dumps(result.to_dict()))
    assert out == vars(result)
    assert (out["gateways"], out["groups"], out["attachments"]) == (100, 10, 20_000)
    assert out["bindings"] == out["logical_switches"] == 100 * 2000
    assert out["affected_1000"] == out["affected_10"] == 10
    assert out["operations_1000"] == out["operations_10"] == 30
    assert out["compile_full_s"] > 0 and out["incremental_1000_ms"] > 0 and out["incremental_10_ms"] > 0
    assert out["incremental_ratio_1000_vs_10"] > 0
    assert 0 < out["inventory_rss_mib"] <= out["compile_peak_rss_mib"]
