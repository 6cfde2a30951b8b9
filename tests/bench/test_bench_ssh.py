"""`silonet bench ssh` runs end to end on a small count (its figures are not judged here)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TEST_LABS

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]


def test_bench_ssh_small(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    if shutil.which("ovs-vswitchd") is None or not Path("/usr/sbin/sshd").exists():
        pytest.skip("missing: Open vSwitch or sshd (./run test installs them)")
    from silonet.bench.ssh import main

    old = os.environ.get("SILONET_SSH_KNOWN_HOSTS")
    try:
        report = main(changes=5, out=tmp_path / "out", lab_dir=TEST_LABS)
    finally:
        if old is None:
            os.environ.pop("SILONET_SSH_KNOWN_HOSTS", None)
        else:
            os.environ["SILONET_SSH_KNOWN_HOSTS"] = old
    saved = json.loads((tmp_path / "out" / "bench-ssh.json").read_text())
    assert saved["changes"] == 5 and set(saved["seconds"]) == {"reconnect", "persistent", "batched"}
    assert saved["ssh_ratio_persistent_vs_reconnect"] == report["ssh_ratio_persistent_vs_reconnect"] > 0
    assert (tmp_path / "out" / "bench-ssh.png").stat().st_size > 1000
