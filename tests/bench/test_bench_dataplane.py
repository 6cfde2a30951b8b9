"""`silonet bench dataplane`: the pure parts on recorded iperf3 JSON, and a smoke run of all
three modes on a real lab (lab prefix "sd", index 10: never another test's lab)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from silonet.bench import iperf
from silonet.bench.iperf import IperfError, Point, Sample
from tests.conftest import TEST_LABS, fresh_lab

FIXTURES = Path(__file__).parent / "fixtures"
PNG = b"\x89PNG\r\n\x1a\n"


def _sample(bps: float, pps: float = 1.0, size: int = 1500) -> Sample:
    return Sample("TCP", size, 1.0, bps, pps)


# ------------------------------------------------------------------ pure
def test_parse_tcp_fixture() -> None:
    raw = (FIXTURES / "iperf3-tcp.json").read_text()
    s = iperf.parse(raw)
    data = json.loads(raw)
    recv = data["end"]["sum_received"]
    assert s.protocol == "TCP" and s.size == 1500
    assert s.throughput_bps == pytest.approx(recv["bits_per_second"])
    assert s.pps == pytest.approx(recv["bytes"] / 1500 / recv["seconds"])  # writes per second
    assert len(s.intervals_bps) == len(data["intervals"]) == 2
    assert s.intervals_bps[0] == pytest.approx(data["intervals"][0]["sum"]["bits_per_second"])
    assert s.retransmits == 0


def test_parse_udp_fixture_counts_received_datagrams() -> None:
    data = json.loads((FIXTURES / "iperf3-udp.json").read_text())
    s = iperf.parse(data)
    total = data["end"]["sum"]
    assert s.protocol == "UDP" and s.size == 1000
    recv = data["end"]["sum_received"]
    assert s.pps == pytest.approx(recv["bytes"] / 1000 / recv["seconds"])
    assert s.pps == pytest.approx((total["packets"] - total["lost_packets"]) / recv["seconds"], rel=1e-3)
    assert s.throughput_bps == pytest.approx(data["end"]["sum_received"]["bits_per_second"])
    assert s.lost_percent == pytest.approx(total["lost_percent"])


def test_parse_errors() -> None:
    with pytest.raises(IperfError, match="unable to connect"):
        iperf.parse('{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server"}')
    with pytest.raises(IperfError, match="not JSON"):
        iperf.parse("iperf3: error")
    with pytest.raises(IperfError, match="lacks"):
        iperf.parse("{}")


def test_per_pair_is_the_average_pair() -> None:
    assert iperf.per_pair([_sample(1e9, 10), _sample(3e9, 30)]) == (2e9, 20)


def test_aggregate_takes_the_median_of_repeats() -> None:
    reps = [[_sample(1e9), _sample(1e9)], [_sample(5e9), _sample(3e9)], [_sample(2e9), _sample(2e9)]]
    p = iperf.aggregate("software", 1500, 2, reps)
    assert p.throughput_bps_per_pair == 2e9 and p.repeats == 3 and p.runs_bps == (1e9, 4e9, 2e9)


def test_saturation_is_the_first_size_at_90_percent_of_the_ceiling() -> None:
    ceiling = {88: 10.0, 1500: 10.0, 4000: 10.0, 8000: 10.0}
    soft = {88: 2.0, 1500: 8.9, 4000: 9.0, 8000: 9.5}
    points = [Point("ceiling", s, 1, v, 0) for s, v in ceiling.items()]
    points += [Point("software", s, 1, v, 0) for s, v in soft.items()]
    points += [Point("gateway", s, 1, 1.0, 0) for s in ceiling]
    assert iperf.saturation(points, "software", 1) == 4000
    assert iperf.saturation(points, "gateway", 1) is None
    assert iperf.ratio(points, "software", "ceiling", 1)[1500] == pytest.approx(0.89)


def test_parse_list() -> None:
    assert iperf.parse_list("1-3,10", 1, 10, "--pairs") == [1, 2, 3, 10]
    assert iperf.parse_list("1..10", 1, 10, "--pairs") == list(range(1, 11))
    with pytest.raises(ValueError, match="outside"):
        iperf.parse_list("0,1", 1, 10, "--pairs")
    with pytest.raises(ValueError, match="not a number"):
        iperf.parse_list("x", 1, 10, "--sizes")


def test_bench_topology_pairs_share_vlans_across_silos() -> None:
    from silonet.bench.dataplane import bench_topology

    topo = bench_topology(3).resolved()
    hosts = {h.name: h for *_, h in topo.hosts()}
    assert [hosts[f"a{i}"].vlan for i in (1, 2, 3)] == [hosts[f"b{i}"].vlan for i in (1, 2, 3)] == [101, 102, 103]
    assert all(h.ip.startswith("203.0.113.") for h in hosts.values())


# ------------------------------------------------------------------ smoke run on a real lab
def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    tools = [t for t in ("iperf3", "ovs-vswitchd", "ovsdb-server", "vtep-ctl", "ss") if shutil.which(t) is None]
    if not Path("/usr/share/openvswitch/scripts/ovs-vtep").exists():
        tools.append("ovs-vtep")
    hint = "apt-get install openvswitch-switch openvswitch-vtep iperf3"
    return f"missing: {', '.join(tools)} ({hint})" if tools else None


@pytest.mark.root
@pytest.mark.ovs
@pytest.mark.slow
def test_smoke_all_modes(tmp_path: Path) -> None:
    if why := _missing():
        pytest.skip(why)
    from silonet.bench import dataplane as dp

    lab = fresh_lab("sd", 10)
    out = tmp_path / "out"
    before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    t0 = time.monotonic()
    report = dp.main(dp.Settings(sizes=[1500], pairs=[1], duration=1, out=out, lab_dir=TEST_LABS,
                                 prefix=lab.prefix, index=lab.index), show_progress=False)
    assert time.monotonic() - t0 < 60
    for name in ("results.csv", "results.json", "throughput-ceiling.png", "throughput-software.png",
                 "throughput-gateway.png", "pps.png", "ratio.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {"mode", "size", "pairs", "throughput_bps_per_pair", "pps_per_pair"} <= set(rows[0])
    assert sorted(r["mode"] for r in rows) == ["ceiling", "gateway", "software"]
    for r in rows:
        assert r["size"] == "1500" and r["pairs"] == "1"
        assert float(r["throughput_bps_per_pair"]) > 0 and float(r["pps_per_pair"]) > 0
    import matplotlib.image

    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG
        assert matplotlib.image.imread(png).shape[0] > 100
    saved = json.loads((out / "results.json").read_text())
    assert {"cpu", "kernel", "ovs", "iperf3"} <= set(saved["machine"])
    assert saved["settings"]["sizes"] == [1500] and len(saved["samples"]) == 3
    assert all(s["intervals_bps"] for s in saved["samples"])
    assert "userspace emulator" in saved["gateways"]
    assert report["timing"]["paper_matrix_estimate_s"] > 0
    # nothing left behind: no namespaces, no lab state
    after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    assert not {n for n in after - before if n.startswith("sd-")}
    assert not lab.exists()
