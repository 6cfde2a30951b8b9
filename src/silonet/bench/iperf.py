"""The pure half of `silonet bench dataplane`: iperf3 JSON -> samples -> per-pair figures.

No I/O here, so every number in results.csv can be checked against a recorded iperf3 run.

- ``parse``: one client's ``iperf3 -J`` output -> a ``Sample``: per-second sender rates,
  the receiver's throughput and packets per second. TCP has no packet count, so its pps is
  writes per second (received bytes / write size); UDP's is datagrams that arrived
  (received bytes / datagram size).
- ``per_pair``: the pairs of one run, in parallel -> average throughput and pps of one pair
  (the paper's "average throughput of one pair").
- ``aggregate``: repeats of a (mode, size, pairs) point -> their median.
- ``saturation``: the smallest size where a mode reaches 90 % of the ceiling.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SATURATION = 0.9


class IperfError(ValueError):
    """iperf3 reported an error, or its output is not the JSON we expect."""


@dataclass(frozen=True)
class Sample:
    """One iperf3 client: what one pair did in one run."""

    protocol: str  # "TCP" or "UDP"
    size: int  # write size (-l)
    seconds: float
    throughput_bps: float  # received at the server
    pps: float  # TCP: writes/s (bytes / size); UDP: datagrams received per second
    intervals_bps: tuple[float, ...] = ()  # per-second sender rates (-i 1)
    lost_percent: float = 0.0  # UDP only
    retransmits: int = 0  # TCP only


@dataclass(frozen=True)
class Point:
    """One (mode, size, pairs) point after averaging over pairs and taking the median of repeats."""

    mode: str
    size: int
    pairs: int
    throughput_bps_per_pair: float
    pps_per_pair: float
    repeats: int = 1
    runs_bps: tuple[float, ...] = field(default=())  # per-pair throughput of each repeat


def parse(raw: str | Mapping[str, Any]) -> Sample:
    """One ``iperf3 -c ... -J`` output (text or parsed) -> a Sample; IperfError if it failed."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise IperfError(f"iperf3 output is not JSON: {err}") from None
    if not isinstance(data, Mapping):
        raise IperfError("iperf3 output is not a JSON object")
    if data.get("error"):
        raise IperfError(f"iperf3: {data['error']}")
    try:
        test = data["start"]["test_start"]
        protocol = str(test["protocol"]).upper()
        size = int(test["blksize"])
        end = data["end"]
        received = end["sum_received"]
        seconds = float(received["seconds"])
        intervals = tuple(float(i["sum"]["bits_per_second"]) for i in data.get("intervals", ())
                          if not i["sum"].get("omitted"))
    except (KeyError, TypeError, ValueError) as err:
        raise IperfError(f"iperf3 JSON lacks {err}") from None
    if seconds <= 0 or size <= 0:
        raise IperfError(f"iperf3 JSON has a zero duration or size (seconds={seconds}, size={size})")
    bps = float(received["bits_per_second"])
    if protocol == "UDP":
        # Datagrams that arrived: received bytes / size (iperf3's lost_packets misses a lost tail).
        total = end.get("sum", received)
        return Sample(protocol, size, seconds, bps, float(received["bytes"]) / size / seconds, intervals,
                      lost_percent=float(total.get("lost_percent", 0)))
    retransmits = int(end.get("sum_sent", {}).get("retransmits", 0) or 0)
    return Sample(protocol, size, seconds, bps, float(received["bytes"]) / size / seconds, intervals,
                  retransmits=retransmits)


def per_pair(samples: Sequence[Sample]) -> tuple[float, float]:
    """Pairs measured in parallel -> (throughput, pps) of the average pair."""
    if not samples:
        raise ValueError("no samples")
    return (statistics.fmean(s.throughput_bps for s in samples), statistics.fmean(s.pps for s in samples))


def aggregate(mode: str, size: int, pairs: int, repeats: Iterable[Sequence[Sample]]) -> Point:
    """Repeats of one point (each a list of parallel pairs) -> the median of their per-pair figures."""
    runs = [per_pair(r) for r in repeats]
    if not runs:
        raise ValueError(f"no runs for {mode} size {size} pairs {pairs}")
    return Point(mode, size, pairs, statistics.median(t for t, _ in runs), statistics.median(p for _, p in runs),
                 len(runs), tuple(t for t, _ in runs))


def saturation(points: Iterable[Point], mode: str, pairs: int, ceiling: str = "ceiling",
               fraction: float = SATURATION) -> int | None:
    """The smallest size at which ``mode`` reaches ``fraction`` of ``ceiling`` with ``pairs`` pairs (None: never)."""
    table = {(p.mode, p.size, p.pairs): p.throughput_bps_per_pair for p in points}
    sizes = sorted({s for (m, s, n) in table if m == mode and n == pairs})
    for size in sizes:
        top = table.get((ceiling, size, pairs))
        if top and table[(mode, size, pairs)] >= fraction * top:
            return size
    return None


def ratio(points: Iterable[Point], num: str, den: str, pairs: int) -> dict[int, float]:
    """size -> throughput(num) / throughput(den) for one pair count (sizes both modes have)."""
    table = {(p.mode, p.size, p.pairs): p.throughput_bps_per_pair for p in points}
    return {s: table[(num, s, n)] / table[(den, s, n)] for (m, s, n) in sorted(table)
            if m == num and n == pairs and table.get((den, s, n))}


def parse_list(text: str, lo: int, hi: int, what: str) -> list[int]:
    """``"1,2,5"``, ``"1-10"``, ``"1..10"`` or a mix -> sorted unique ints within [lo, hi]."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        sep = ".." if ".." in part else "-" if "-" in part[1:] else None
        try:
            if sep:
                a, b = (int(x) for x in part.split(sep, 1))
                if b < a or b - a > 100_000:
                    raise ValueError
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ValueError(f"{what}: {part!r} is not a number or a range like 1-10") from None
    bad = sorted(v for v in out if not lo <= v <= hi)
    if bad:
        raise ValueError(f"{what}: {bad[0]} is outside {lo}..{hi}")
    if not out:
        raise ValueError(f"{what}: empty")
    return sorted(out)
