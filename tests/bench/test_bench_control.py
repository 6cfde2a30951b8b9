"""`silonet bench control --quick` runs every section end to end against real ovsdb-servers,
the ovs-vtep lab and sshd (its figures are not judged here: machines are shared and noisy)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from silonet.bench import control
from tests.conftest import TEST_LABS

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]

KEYS = ("attach_p50_ms", "attach_p99_ms", "attach_to_forwarding_ms", "bulk_ratio_vs_vtepctl",
        "ssh_ratio_persistent_vs_reconnect", "compile_full_s", "compile_peak_rss_mib",
        "incremental_ratio_1000_vs_10", "paging_p99_ms", "idle_cpu_pct")


def test_bench_control_quick(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ovs-vswitchd") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("missing: Open vSwitch or sshd (./run test installs them)")
    old = os.environ.get("SILONET_SSH_KNOWN_HOSTS")
    work = tmp_path / "w"
    try:
        report = control.main(control.Settings(quick=True, out=tmp_path / "out", work=work, lab_dir=TEST_LABS))
    finally:
        if old is None:
            os.environ.pop("SILONET_SSH_KNOWN_HOSTS", None)
        else:
            os.environ["SILONET_SSH_KNOWN_HOSTS"] = old
    saved = json.loads((tmp_path / "out" / "control.json").read_text())
    assert saved == report
    for key in KEYS:
        assert isinstance(saved[key], int | float) and saved[key] >= 0, key
    assert saved["attach_samples"] == 20 and saved["bulk_attachments"] == 200
    assert saved["converge_10_gateways_s"] > 0 and saved["logical_switches_on_first_gateway"] == 10
    # 10,000 MACs learned on one device reached both peers (counted on each device), attaches went on
    assert saved["macs_remote_on_peers"] == [10_000, 10_000] and saved["macs_distributed_s"] > 0, saved
    assert saved["macs_attach_failed"] == 0 and saved["macs_attach_ratio"] > 0 and saved["macs_restart_realized_s"] > 0
    assert (tmp_path / "out" / "control.png").stat().st_size > 1000
    assert not work.exists()  # every server stopped by its pid file, the scratch directory gone


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown section"):
        control.main(control.Settings(out=tmp_path, work=tmp_path / "w", sections=("attach", "nope")))
