"""`silonet bench control`'s ``scale`` section: quick (20 gateways) end to end on real vtep
ovsdb-servers and a real `silonet serve` (figures are not judged: machines are shared and noisy),
and the pure parts it is built from."""

from __future__ import annotations

import collections
import glob
import json
import os
from pathlib import Path

import pytest

from silonet.bench import control, figures, scale
from silonet.devices import postgres
from silonet.devices.vtepdb import available

FIGURES = ("converge_1000_gateways_s", "serve_rss_1000_gateways_mib", "idle_cpu_1000_gateways_pct",
           "attach_p50_ms_at_1000", "attach_p99_ms_at_1000")


@pytest.mark.ovs
@pytest.mark.slow
def test_scale_quick(tmp_path: Path) -> None:
    if missing := available():
        pytest.skip(f"missing: {missing}")
    work = tmp_path / "w"
    report = control.main(control.Settings(quick=True, out=tmp_path / "out", work=work, sections=("scale",)))
    saved = json.loads((tmp_path / "out" / "control.json").read_text())
    assert saved == report
    for key in FIGURES:
        assert isinstance(saved[key], int | float) and not isinstance(saved[key], bool) and saved[key] > 0, key
    assert saved["scale_gateways"] == saved["scale_realized"] == 20
    assert saved["scale_attachments"] == 40  # 20 networks x 2 groups
    # the converge's cost beside its time; the idle window after the tail settled (two slices at least)
    assert saved["scale_converge_serve_cpu_s"] > 0 and saved["scale_converge_devices_cpu_s"] >= 0  # 10 ms ticks
    assert saved["scale_idle_settle_s"] >= scale.SETTLE_SLICE_S * 2
    assert saved["attach_samples_at_1000"] == 5 and saved["attach_failed_at_1000"] == 0
    assert saved["scale_ls_on_first_gateway"] == saved["scale_ls_expected_on_first_gateway"]  # vtep-ctl agrees
    assert "attach_ratio_at_1000" not in saved  # the attach section did not run: no ratio to take
    assert (tmp_path / "out" / "scale-serve.log").stat().st_size > 0
    assert saved["scale_log_realized_gateways"] == 20 and isinstance(saved["scale_log_warnings"], int)
    assert not work.exists() or not list(work.rglob("*.pid"))  # every server stopped by its pid file
    assert saved["scale_store"] == "sqlite" and saved["serve_processes"] == 1


@pytest.mark.ovs
@pytest.mark.slow
def test_scale_quick_with_worker_processes_on_postgresql(tmp_path: Path) -> None:
    """``scale_workers=2`` with ``scale_postgresql=1``: the section's own PostgreSQL holds the store,
    the API and two worker processes converge the gateways, and the database server is stopped with
    the rest."""
    if missing := available() or postgres.available():
        pytest.skip(f"missing: {missing}")
    private = set(glob.glob(f"/tmp/{postgres.PRIVATE_PREFIX}*"))  # as root its data lives there, removed on stop
    work = tmp_path / "w"
    settings = control.Settings(quick=True, out=tmp_path / "out", work=work, sections=("scale",),
                                sizes={"scale_workers": 2, "scale_postgresql": 1, "scale_attaches": 2})
    saved = control.main(settings)
    assert saved["scale_store"] == "postgresql" and saved["scale_workers"] == 2
    assert saved["scale_realized"] == 20 and saved["attach_failed_at_1000"] == 0, saved
    assert saved["serve_processes"] == 3  # the API's and its two workers' (no resource tracker)
    assert saved["scale_converge_store_cpu_s"] >= 0
    assert set(glob.glob(f"/tmp/{postgres.PRIVATE_PREFIX}*")) <= private  # the server stopped: its directory gone
    assert not work.exists() or not list(work.rglob("postmaster.pid"))


def test_topology_spreads_each_network_over_consecutive_groups() -> None:
    gws = [{"name": f"g{i}"} for i in range(40)]
    topo = scale.topology(gws, per=3)
    groups = {g["name"]: g for g in topo["interface_groups"]}
    assert len(groups) == 8 + 1 and all(len(groups[f"grp{i}"]["members"]) == 5 for i in range(8))
    assert [m["port"] for m in groups["span10"]["members"]] == ["p2"] * 10
    assert len(topo["networks"]) == 40
    per_group = collections.Counter(a["interface_group"] for n in topo["networks"] for a in n["attachments"])
    assert set(per_group.values()) == {15}  # 40 networks x 3 groups over 8 groups
    vlans = collections.defaultdict(set)
    for n in topo["networks"]:
        assert len({a["interface_group"] for a in n["attachments"]}) == 3
        for a in n["attachments"]:
            assert a["vlan"] not in vlans[a["interface_group"]]  # one network per (group, VLAN)
            vlans[a["interface_group"]].add(a["vlan"])


def test_topology_refuses_more_groups_per_network_than_groups() -> None:
    with pytest.raises(ValueError, match="3 groups per network need 3 groups"):
        scale.topology([{"name": f"g{i}"} for i in range(10)], per=3)


def test_trouble_names_the_most_common_reason_with_ports_folded() -> None:
    def row(error: str | None, realized: int = 1) -> dict:
        return {"state": "failed" if error else "realized", "realized_generation": realized,
                "desired_generation": 1, "last_error": error, "binding_errors": {}}

    rows = [row("disconnected from tcp:127.0.0.1:4001", 0), row("disconnected from tcp:127.0.0.1:4002", 0),
            row("timeout", 0), row(None)]
    assert scale._trouble(rows) == "2 gateways: disconnected from tcp:127.0.0.1:4001"
    assert scale._trouble([row(None)]) is None


def test_ratio_needs_both_sections() -> None:
    assert scale.derived({"attach_p50_ms_at_1000": 30.0}) == {}
    out = scale.derived({"attach_p50_ms_at_1000": 30.0, "attach_p50_ms": 20.0,
                         "attach_by_span": {"10_gateways": {"p50_ms": 25.0}}})
    assert out == {"attach_ratio_at_1000": 1.5, "attach_ratio_at_1000_vs_10_gateway_span": 1.2}


def test_tree_counts_this_process() -> None:
    assert figures.tree(os.getpid())[0] == os.getpid()
    assert figures.tree_rss_mib(os.getpid()) > 1 and figures.tree_cpu_s(os.getpid()) > 0


def test_log_summary_folds_numbers_and_counts_realized_gateways(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "2026-12-03 11:27:04,742 WARNING silonet.reconcile.apply [-]: gateway bs-gw-029: not writing: lease\n"
        "2026-12-03 11:27:05,175 WARNING silonet.reconcile.apply [ab12]: gateway bs-gw-030: not writing: lease\n"
        "2026-12-03 11:27:06,000 ERROR silonet.reconcile [-]: renewing the gateway leases failed\n"
        "2026-12-03 11:27:07,000 INFO silonet.gateway [-]: gateway bs-gw-029 reachable, realized at generation 1\n"
        "2026-12-03 11:27:08,000 INFO silonet.gateway [-]: gateway bs-gw-029 reachable, realized at generation 2\n")
    out = scale._log_summary(log)
    assert out["scale_log_warnings"] == 3 and out["scale_log_realized_gateways"] == 1
    assert out["scale_log_top_warning"].startswith("2 x silonet.reconcile.apply [-]: gateway bs-gw-029: not writing")
    assert scale._log_summary(tmp_path / "absent.log") == {}
