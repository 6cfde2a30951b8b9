"""A switch's daemons, started in its namespace and stopped by their pid files: a gateway's
three OVS ones (plus OpenSSH's sshd in an ssh or mixed lab), or a dual-homed ToR's ovsdb-server
(conf.db only, unix socket only) and ovs-vswitchd.

A pid is signalled only when /proc says that process is the daemon started with that very
pid file (sshd: with that very config file, which names the pid file), so a stale pid file
can never hit an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from silonet.lab.errors import LabError
from silonet.lab.layout import DualTorLayout, GatewayLayout
from silonet.lab.netns import ns_argv, run

Switch = GatewayLayout | DualTorLayout  # a daemon owner: dir, netns, db_sock, name, what
DAEMONS = ("ovsdb-server", "ovs-vswitchd", "ovs-vtep")
TOR_DAEMONS = ("ovsdb-server", "ovs-vswitchd")
SSHD = "sshd"
SSHD_BIN = "/usr/sbin/sshd"
SSHD_PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd chroots its pre-auth child here; only boot creates it
OVS_VTEP = "/usr/share/openvswitch/scripts/ovs-vtep"
VSWITCH_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
VTEP_SCHEMA = "/usr/share/openvswitch/vtep.ovsschema"


# ovs-vsctl, vtep-ctl and ovs-ofctl give up after this many seconds unless told otherwise. Without
# it, a call ovs-vtep makes while its ovsdb-server is being restarted can wait forever, wedging
# ovs-vtep and keeping the gateway's namespace alive after `down`.
CTL_TIMEOUT = 10


def ovs_env(gw: Switch) -> dict[str, str]:
    d = str(gw.dir)
    return {"OVS_RUNDIR": d, "OVS_LOGDIR": d, "OVS_DBDIR": d, "OVS_CTL_TIMEOUT": str(CTL_TIMEOUT)}


def gateway_daemons(gw: Switch) -> tuple[str, ...]:
    """The daemons this switch runs, in start order (sshd only on gateways of an ssh or mixed lab)."""
    if isinstance(gw, DualTorLayout):
        return TOR_DAEMONS
    return (*DAEMONS, SSHD) if gw.sshd else DAEMONS


def pidfile(gw: Switch, daemon: str) -> Path:
    return gw.dir / f"{daemon}.pid"


def daemon_argv(gw: Switch, daemon: str) -> list[str]:
    d, pid, log = gw.dir, pidfile(gw, daemon), gw.dir / f"{daemon}.log"
    common = [f"--pidfile={pid}", f"--log-file={log}", "--detach"]
    if daemon == "ovsdb-server" and isinstance(gw, DualTorLayout):  # nobody manages a ToR from outside
        return ["ovsdb-server", str(d / "conf.db"), f"--remote=punix:{gw.db_sock}", *common]
    if daemon == "ovs-vswitchd":
        return ["ovs-vswitchd", f"unix:{gw.db_sock}", *common]
    if isinstance(gw, GatewayLayout):
        if daemon == "ovsdb-server":
            return ["ovsdb-server", str(d / "conf.db"), str(d / "vtep.db"), f"--remote=punix:{gw.db_sock}",
                    f"--remote=ptcp:6640:{gw.mgmt_ip}", *common]
        if daemon == "ovs-vtep":
            return [OVS_VTEP, *common, gw.ps_bridge]
        if daemon == SSHD:  # it forks into the background and writes its PidFile (named in the config) itself
            return [SSHD_BIN, "-f", str(gw.sshd_config), "-E", str(log)]
    raise LabError(f"unknown daemon {daemon!r} of {gw.what} {gw.name!r}; one of {', '.join(gateway_daemons(gw))}")


def create_dbs(gw: Switch) -> None:
    """Fresh conf.db (vswitch schema), and on a gateway vtep.db (hardware_vtep schema)."""
    gw.dir.mkdir(parents=True, exist_ok=True)
    dbs = [("conf.db", VSWITCH_SCHEMA)] + ([("vtep.db", VTEP_SCHEMA)] if isinstance(gw, GatewayLayout) else [])
    for name, schema in dbs:
        db = gw.dir / name
        db.unlink(missing_ok=True)
        run(["ovsdb-tool", "create", str(db), schema])


def start(gw: Switch, daemon: str) -> int:
    """Start one daemon (it detaches once ready) and return its pid."""
    if (pid := running_pid(gw, daemon)) is not None:
        raise LabError(f"{daemon} of {gw.what} {gw.name!r} is already running (pid {pid})")
    if daemon == SSHD:
        ensure_privsep_dir()
    run(ns_argv(gw.netns, daemon_argv(gw, daemon), ovs_env(gw)), timeout=60)
    pid = running_pid(gw, daemon)
    deadline = time.monotonic() + 5.0  # sshd writes its pid file just after its parent returned
    while pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
        pid = running_pid(gw, daemon)
    if pid is None:
        raise LabError(f"{daemon} of {gw.what} {gw.name!r} did not stay up; see {gw.dir / (daemon + '.log')}")
    return pid


def sync_vswitchd(gw: Switch, timeout: int = 30) -> None:
    """Wait until ovs-vswitchd is on its database and has applied it: a changed value makes
    ovs-vsctl wait for that. A restarted ovs-vswitchd forwards nothing (its ToRs included) until
    then, and reconnects with a backoff of up to 8 s."""
    argv = ["ovs-vsctl", f"--db=unix:{gw.db_sock}", f"--timeout={timeout}", "set", "Open_vSwitch", ".",
            f"external_ids:silonet-lab-sync={time.time_ns()}"]
    run(ns_argv(gw.netns, argv, ovs_env(gw)), timeout=timeout + 5)


def held_marker(gw: GatewayLayout) -> Path:
    """Marker: ovs-vtep was stopped because a daemon it needs was, and comes back with it."""
    return gw.dir / "ovs-vtep.held"


def ensure_privsep_dir() -> None:
    """sshd (and ``sshd -t``) refuse to run without it; root-owned, not group/world-writable."""
    SSHD_PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)


def running_pid(gw: Switch, daemon: str) -> int | None:
    """The pid in the daemon's pid file, if that process is alive and is this very daemon."""
    path = pidfile(gw, daemon)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in cmdline]
    if daemon == SSHD and isinstance(gw, GatewayLayout):
        # sshd rewrites its title: "sshd: /usr/sbin/sshd -f <config> -E <log> [listener] ..." (one string)
        line = " ".join(a for a in args if a)
        ours = line.startswith(("sshd: ", SSHD_BIN + " ")) and f" -f {gw.sshd_config} " in f" {line} "
        return pid if ours else None
    ours = any(a.endswith(daemon) for a in args[:2]) and f"--pidfile={path}" in args
    return pid if ours else None


def stop(gw: Switch, daemon: str, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True if it was running. Removes the pid file.

    ovs-vtep is asked to exit first (``ovs-appctl exit``): it then finishes the ovs-vsctl or
    ovs-ofctl call it is in, instead of leaving it orphaned in the namespace. sshd's open
    sessions (its descendants: nothing else forks from it) end with it, as on a switch that
    reboots: otherwise a connected manager would keep the namespace alive."""
    pid = running_pid(gw, daemon)
    if pid is None:
        pidfile(gw, daemon).unlink(missing_ok=True)
        return False
    sessions = _descendants(pid) if daemon == SSHD else []
    if daemon == "ovs-vtep":
        ctl = gw.dir / f"ovs-vtep.{pid}.ctl"
        run(ns_argv(gw.netns, ["ovs-appctl", "--timeout=5", "-t", str(ctl), "exit"], ovs_env(gw)), check=False,
            timeout=10)
        _wait_gone(pid, 3.0)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        if not _alive(pid):
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        _wait_gone(pid, wait)
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        sessions = [p for p in sessions if _alive(p)]
        for p in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        for p in sessions:
            _wait_gone(p, wait)
    if _alive(pid):
        raise LabError(f"{daemon} of {gw.what} {gw.name!r} (pid {pid}) did not exit")
    pidfile(gw, daemon).unlink(missing_ok=True)
    return True


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from /proc; taken before ``pid`` is stopped."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = [p for p, pp in parent.items() if pp == todo[0]]
        out += kids
        todo = todo[1:] + kids
    return out


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Alive and not a zombie (a detached daemon is not our child, but be exact anyway)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
