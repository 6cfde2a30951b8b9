"""``Lab``: build, inspect, poke and tear down one emulated data center in namespaces.

Everything ``down``, ``status`` and the exec helpers need comes from the state file, so a
new process (the CLI, a test, the reconciler) can operate a lab another process built.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from silonet.config import secrets_dir
from silonet.lab import build, daemons, fault, views
from silonet.lab.errors import LabError
from silonet.lab.layout import GatewayLayout, LabLayout, build_layout, check_driver, check_prefix_index
from silonet.lab.netns import del_link, del_netns, netns_pids, ns_argv, run
from silonet.lab.state import StateFile, faulted, now
from silonet.lab.topology import LabTopology, paper_topology

Progress = Callable[[str, int, int], None]  # (what is being done, steps done, steps in all)


def client_key_dir(prefix: str) -> Path:
    """The lab's folder in the secrets directory (``SILONET_SECRETS_DIR``, default under the data
    directory): a manager with the default setting takes the lab's inventory as it is."""
    return secrets_dir() / f"lab-{prefix}"


class Lab:
    """One lab: namespaces ``<prefix>-*``, root interfaces ``<prefix>mgmt``/``<prefix>m<i>``,
    daemons and state under ``<base_dir>/<prefix>``. ``index`` picks its 198.18.x subnets."""

    def __init__(self, prefix: str = "sn", index: int = 0, base_dir: Path | str = Path(".lab")) -> None:
        check_prefix_index(prefix, index)
        self.prefix = prefix
        self.index = index
        self.base_dir = Path(base_dir).absolute()
        self.dir = self.base_dir / prefix
        self._state = StateFile(self.dir / "lab.json")
        self._layout: LabLayout | None = None

    def __repr__(self) -> str:
        return f"Lab(prefix={self.prefix!r}, index={self.index}, base_dir={str(self.base_dir)!r})"

    # ------------------------------------------------------------------ state
    @classmethod
    def is_up(cls, prefix: str = "sn", base_dir: Path | str = Path(".lab")) -> bool:
        """Whether the state file of lab ``prefix`` under ``base_dir`` says it is completely up."""
        lab = cls(prefix, 0, base_dir)
        return lab.exists() and lab._state.load().get("phase") == "up"

    def exists(self) -> bool:
        """Whether a state file exists (the lab is up, or half-built and needs ``down``)."""
        return self._state.exists()

    def layout(self) -> LabLayout:
        """Names and addresses, from the state file (its index wins over the constructor's)."""
        if self._layout is None:
            data = self._state.load()
            self.index = int(data["index"])
            topo = LabTopology.from_dict(data["topology"], str(self._state.path))
            key_dir = Path(data["client_key_dir"]) if data.get("client_key_dir") else None
            self._layout = build_layout(self.prefix, self.index, self.base_dir, topo, data.get("driver") or "ovsdb",
                                        key_dir)
        return self._layout

    @property
    def driver(self) -> str:
        """How the inventory manages the gateways: ovsdb, ssh or mixed (from the state file)."""
        return self.layout().driver

    # ------------------------------------------------------------------ up / down
    def up(self, topology: LabTopology | None = None, progress: Progress | None = None,
           driver: str = "ovsdb") -> None:
        """Build the lab (the paper topology by default). On failure the state file stays, so
        ``down`` removes exactly what was made; the error says so.

        ``driver``: how ``inventory`` tells silonet to manage the gateways. ``ovsdb``: OVSDB over
        TCP on the management IP. ``ssh``: the ``vtepctl`` dialect over OpenSSH (``root@<mgmt
        ip>:22``, each gateway's host key in its inventory entry (and in a known_hosts file under
        ``<lab dir>/ssh``), the client key in ``<secrets dir>/lab-<prefix>``, where credentials
        references may point). ``mixed``: the
        gateways alternate, the first one ovsdb. With ssh or mixed every gateway runs sshd, so
        each can be reached both ways."""
        check_driver(driver)
        if self.exists():
            phase = self._state.load().get("phase")
            if phase == "up":
                raise LabError(f"lab '{self.prefix}' is already up; run `silonet lab down` first")
            raise LabError(f"lab '{self.prefix}' was left half-built (phase {phase}); run `silonet lab down` first")
        topo = (topology or paper_topology()).resolved()
        layout = build_layout(self.prefix, self.index, self.base_dir, topo, driver,
                              client_key_dir(self.prefix) if driver != "ovsdb" else None)
        build.check_host(driver)
        build.check_free(layout)
        if self.dir.exists() and any(self.dir.iterdir()):
            # down removes the whole directory, so it must hold nothing but what up puts there
            raise LabError(f"{self.dir} is not empty and holds no lab state; remove it or pick another --dir/--prefix")
        self._state.create(self.prefix, self.index, topo.to_dict(), driver)
        self._state.set(active={p.name: p.members[0] for p in layout.pairs})  # before anything carries a pair
        if layout.key_dir is not None:  # before the key is made, so down removes it
            self._state.set(client_key_dir=str(layout.key_dir))
        self._layout = layout
        todo = build.steps(layout, self._state)
        try:
            for i, (label, step) in enumerate(todo):
                if progress:
                    progress(label, i, len(todo))
                step()
        except (LabError, OSError) as err:
            self._state.set(phase="failed", error=str(err))
            raise LabError(f"lab '{self.prefix}' failed while building ({label}): {err}; "
                           f"logs in {self.dir}; run `silonet lab down` to remove what was made") from None
        except BaseException as err:  # Ctrl-C included: leave a state that down understands
            self._state.set(phase="failed", error=repr(err))
            raise
        self._state.set(phase="up", error=None, finished=now())
        if progress:
            progress("up", len(todo), len(todo))

    def down(self) -> list[str]:
        """Stop the daemons (by pid file), delete the namespaces and root interfaces the state
        file lists, then the lab directory. Safe to repeat; returns warnings for leftovers
        it did not make (processes someone else started inside a lab namespace)."""
        if not self.exists():
            return []
        data = self._state.load()
        layout = self.layout()
        notes: list[str] = []
        for entry in reversed(data.get("daemons", [])):  # a faulted gateway's are stopped already: no matter
            owner, _, daemon = entry.partition("/")
            try:
                daemons.stop(layout.switch(owner), daemon)
            except LabError as err:
                notes.append(str(err))
        namespaces = list(reversed(data.get("netns", [])))
        deadline = time.monotonic() + 2.0  # helpers of a just-stopped daemon may take a moment to exit
        while time.monotonic() < deadline and any(netns_pids(ns) for ns in namespaces):
            time.sleep(0.05)
        for ns in namespaces:
            pids = netns_pids(ns)
            if pids:
                notes.append(f"namespace {ns} still holds processes the lab did not start "
                             f"({_describe(pids)}); they keep it alive until they exit")
            del_netns(ns)
        for link in reversed(data.get("links", [])):
            del_link(link)
        shutil.rmtree(self.dir, ignore_errors=True)
        if layout.key_dir is not None:  # the client key's folder in the secrets directory
            for key in (layout.client_key, layout.client_key.with_name(layout.client_key.name + ".pub")):
                key.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                layout.key_dir.rmdir()
        self._layout = None
        return notes

    # ------------------------------------------------------------------ views
    def status(self) -> dict[str, Any]:
        """Hosts per silo and gateways with their management addresses (JSON-ready). ``driver`` is
        the lab's; per gateway ``driver`` is what its inventory entry uses, ``ssh`` its sshd
        address (None without sshd); ``known_hosts`` lists every gateway's host key, for OpenSSH or
        SILONET_SSH_KNOWN_HOSTS (the manager needs it not: ``inventory`` carries each host key).
        Per gateway also ``pair`` (None if unpaired), ``active`` (pair members: whether it carries
        the pair; else None) and ``down`` (taken down by ``fault``); ``pairs`` and
        ``dual_homed_tors`` say which member each pair and its ToRs use now."""
        return views.status(self.layout(), self._state.load(), self.dir)

    def inventory(self, topology: LabTopology | None = None, driver: str | None = None) -> dict[str, Any]:
        """The topology for ``silonet apply -f``: silos, gateways (ports, vtep_ip, management),
        interface groups; no networks. Of the running lab, or of ``topology`` laid out at this index
        with ``driver`` (default ovsdb). Management per gateway: ``{driver: ovsdb, address:
        tcp:<mgmt ip>:6640}`` or ``{driver: ssh, dialect: vtepctl, address: root@<mgmt ip>:22,
        credentials: file:<secrets dir>/lab-<prefix>/id_ed25519, host_key: <its sshd's public key>}``
        (``host_key`` once the lab made the key: a manager needs no known_hosts); a mixed lab
        alternates, the first one ovsdb, and gives both members of a pair the first one's. Pair
        members carry ``pair`` and the anycast ``vtep_ip``."""
        if topology is None:
            layout = self.layout()
            if driver is not None and driver != layout.driver:
                raise LabError(f"lab '{self.prefix}' runs with driver {layout.driver}, not {driver}; "
                               f"rebuild it with `silonet lab up --driver {driver}`")
        else:
            layout = build_layout(self.prefix, self.index, self.base_dir, topology.resolved(), driver or "ovsdb",
                                  client_key_dir(self.prefix))
        return views.inventory(layout)

    # ------------------------------------------------------------------ poking
    def host_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in a host's namespace: for ``subprocess.Popen`` (iperf3 -s...)."""
        return ns_argv(self.layout().host(host).netns, argv)

    def gateway_argv(self, gateway: str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in a gateway's namespace with OVS_RUNDIR set."""
        gw = self.layout().gateway(gateway)
        return ns_argv(gw.netns, argv, daemons.ovs_env(gw))

    def host_exec(self, host: str, argv: Sequence[str], timeout: float = 30.0, check: bool = False,
                  input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a host's namespace (text output captured)."""
        return run(self.host_argv(host, argv), check=check, timeout=timeout, input=input)

    def gateway_exec(self, gateway: str, argv: Sequence[str], timeout: float = 30.0, check: bool = False
                     ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a gateway's namespace with OVS_RUNDIR set, so ovs-vsctl,
        ovs-appctl and vtep-ctl find that gateway's daemons without flags."""
        return run(self.gateway_argv(gateway, argv), check=check, timeout=timeout)

    def vtep_ctl(self, gateway: str, *args: str, timeout: float = 10.0) -> str:
        """``vtep-ctl`` against the gateway's hardware_vtep database; stdout, LabError on failure."""
        gw = self.layout().gateway(gateway)
        argv = ["vtep-ctl", f"--db=unix:{gw.db_sock}", f"--timeout={max(1, int(timeout))}", *args]
        return self.gateway_exec(gateway, argv, timeout=timeout + 5, check=True).stdout

    def ovs_vsctl(self, gateway: str, *args: str, timeout: float = 10.0) -> str:
        """``ovs-vsctl`` against the gateway's switch database; stdout, LabError on failure."""
        gw = self.layout().gateway(gateway)
        argv = ["ovs-vsctl", f"--db=unix:{gw.db_sock}", f"--timeout={max(1, int(timeout))}", *args]
        return self.gateway_exec(gateway, argv, timeout=timeout + 5, check=True).stdout

    def ping(self, src_host: str, dst_ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        """Whether ``count`` pings from a host get answered (each waits at most ``timeout`` s)."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", f"{timeout:g}", dst_ip]
        return self.host_exec(src_host, argv, timeout=count * (timeout + 0.2) + 5).returncode == 0

    def fault(self, gateway: str, action: str) -> dict[str, Any]:
        """A device failure (``down``) or its boot (``up``) of any lab gateway, paired or not; an
        active pair member's failure fails the pair over to its partner. Returns what was done and
        how long it took (``ms``; ``failover.ms``). See ``lab/fault.py`` for the emulation."""
        return fault.inject(self.layout(), self._state, gateway, action)

    def _not_faulted(self, gw: GatewayLayout) -> None:
        if gw.name in faulted(self._state.load()):
            raise LabError(f"gateway {gw.name!r} is down (a fault); `silonet lab fault {gw.name} up` brings it back")

    def kill_daemon(self, gateway: str, daemon: str) -> bool:
        """Stop one of a gateway's daemons by its pid file (fault injection); True if it ran.

        ovs-vtep corrupts its own state when its database or switch vanishes under it (stale
        flows, wedged helper calls), so stopping ovsdb-server or ovs-vswitchd first stops a
        running ovs-vtep too; ``start_daemon`` brings it back once both run again. Note: while
        ovsdb-server is down, ovs-vswitchd forwards nothing at all, the ToRs in it included
        (an OVS userspace property); with only ovs-vtep down, installed flows keep forwarding.
        Stopping sshd (ssh and mixed labs) ends its open sessions too and touches nothing else."""
        gw = self.layout().gateway(gateway)
        _check_daemon(gw, daemon)
        self._not_faulted(gw)
        if daemon == daemons.SSHD:
            return daemons.stop(gw, daemon)
        if daemon != "ovs-vtep" and daemons.running_pid(gw, daemon) and daemons.stop(gw, "ovs-vtep"):
            daemons.held_marker(gw).touch()
        return daemons.stop(gw, daemon)

    def start_daemon(self, gateway: str, daemon: str) -> int:
        """Start it again with the same arguments (ovsdb-server reopens the same db files); its pid.
        An ovs-vtep that ``kill_daemon`` stopped along restarts when both its daemons run again,
        and reprograms the flows from the database, as a switch's agent would."""
        gw = self.layout().gateway(gateway)
        _check_daemon(gw, daemon)
        self._not_faulted(gw)
        pid = daemons.start(gw, daemon)
        if daemon == daemons.SSHD:
            return pid
        deps_up = all(daemons.running_pid(gw, d) for d in ("ovsdb-server", "ovs-vswitchd"))
        if daemon != "ovs-vtep" and deps_up:
            daemons.sync_vswitchd(gw)  # so the gateway is whole again
            if daemons.held_marker(gw).exists():
                daemons.start(gw, "ovs-vtep")
        if daemon == "ovs-vtep" or deps_up:
            daemons.held_marker(gw).unlink(missing_ok=True)
        return pid


def _describe(pids: list[int]) -> str:
    def cmd(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:60].strip()
        except OSError:
            return "exited"

    return ", ".join(f"pid {p}: {cmd(p)}" for p in pids)


def _check_daemon(gw: GatewayLayout, daemon: str) -> None:
    known = daemons.gateway_daemons(gw)
    if daemon not in known:
        extra = " (sshd runs only in labs built with --driver ssh or mixed)" if daemon == daemons.SSHD else ""
        raise LabError(f"unknown daemon {daemon!r} for gateway {gw.name!r}; one of {', '.join(known)}{extra}")

