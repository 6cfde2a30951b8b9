"""Thin wrappers over ``ip`` and friends: every failure becomes a LabError naming the command.

Veths are created with both ends directly inside their namespaces (``ip link add ... netns``),
so nothing but the management bridge and its veth ends ever appears in the root namespace.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from silonet.lab.errors import LabError

NETNS_DIR = Path("/run/netns")


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run a command with a bounded time; raise LabError with its stderr when ``check`` and it fails."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False)
    except FileNotFoundError:
        raise LabError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(argv)}` did not finish within {timeout:g} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{shlex.join(argv)}` failed (exit {proc.returncode}): {detail[-1] if detail else 'no output'}")
    return proc


def ns_argv(ns: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """``argv`` run inside namespace ``ns``, with extra environment variables."""
    prefix = ["ip", "netns", "exec", ns]
    if env:
        prefix += ["env", *(f"{k}={v}" for k, v in env.items())]
    return [*prefix, *argv]


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *(("-n", ns) if ns else ()), *args], check=check)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def add_netns(name: str) -> None:
    """A namespace with loopback up and IPv6 off: no router/neighbour solicitations flooding
    across the gateways, so their MAC tables hold only what the tenant traffic put there."""
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)
    run(ns_argv(name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                       "net.ipv6.conf.default.disable_ipv6=1"]))


def disable_ipv6(ifname: str) -> None:
    """IPv6 off on one root-namespace interface the lab made (never a system-wide setting)."""
    path = Path("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6")
    if path.exists():
        path.write_text("1")


def del_netns(name: str) -> None:
    if netns_exists(name):
        ip("netns", "del", name, check=False)


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    out = ip("netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def link_exists(name: str, ns: str | None = None) -> bool:
    if ns is None:
        return Path("/sys/class/net", name).exists()
    return ip("link", "show", "dev", name, ns=ns, check=False).returncode == 0


def del_link(name: str) -> None:
    """Delete a root-namespace interface (a veth goes with its peer)."""
    if link_exists(name):
        ip("link", "del", "dev", name, check=False)


def add_veth(a: str, a_ns: str | None, b: str, b_ns: str | None, mtu: int) -> None:
    """One veth pair with each end created directly in its namespace (None = root)."""
    argv = ["link", "add", "name", a, *(("netns", a_ns) if a_ns else ()), "mtu", str(mtu),
            "type", "veth", "peer", "name", b, *(("netns", b_ns) if b_ns else ()), "mtu", str(mtu)]
    ip(*argv)


def root_addresses() -> list[tuple[str, str]]:
    """(interface, address/prefix) of every IPv4 address in the root namespace."""
    out = ip("-j", "-4", "addr", "show").stdout
    return [(i["ifname"], f"{a['local']}/{a['prefixlen']}") for i in json.loads(out or "[]")
            for a in i.get("addr_info", [])]


def which(cmd: str) -> str | None:
    return shutil.which(cmd)
