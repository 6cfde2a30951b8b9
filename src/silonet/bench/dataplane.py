"""`silonet bench dataplane`: the paper's data-plane evaluation as one command.

VM pairs, one VM of each pair in each of two silos, each pair on its own VLAN/VNI, MTU 9000 on
every hop; iperf3 (-J, one sample a second) with the paper's write sizes, 1..N pairs in
parallel, reported as the average throughput of one pair. Three modes in the same run:

- ``ceiling``: no encapsulation; per pair VM -> Linux bridge in "hypervisor" A -> a plain veth
  wire -> Linux bridge in "hypervisor" B -> VM. The limit of this machine.
- ``software``: per pair VM -> Linux bridge + kernel VXLAN device (VNI 20100+i) in hypervisor A
  -> one underlay veth (198.19.<index>.0/24, MTU 9100) -> the same in hypervisor B -> VM.
- ``gateway``: tagged VMs (VLAN 100+i) -> ToR (OVS) -> silonet-managed gateways (ovs-vtep) ->
  VXLAN underlay -> gateway -> ToR -> VM. The gateways are configured through silonet's own API
  (in-process manager + reconciler, or a running ``silonet serve`` given with ``--server``):
  ``POST /v1/apply`` of the inventory, one network per pair, both (group, VLAN)s attached ?wait.

The lab (``Lab``, prefix ``sd`` by default) carries the gateway mode; the software and ceiling
paths are extra namespaces ``<prefix>-k-*`` built here, recorded in a state file before each is
made and deleted by name at the end, on failure too, and by the next run if one was killed.

On this machine the gateways are the ovs-vtep emulator on OVS's userspace (netdev) datapath,
so ``gateway`` is expected to be slower than kernel VXLAN; with ``--inventory`` the same
command drives real gateways (see ``load_inventory``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from silonet.bench import dpreport, iperf
from silonet.bench.dpreport import (
    DEFAULT_DURATION,
    MODES,
    MTU,
    PAPER_PAIRS,
    PAPER_SIZES,
    UNDERLAY_MTU,
    console,
)
from silonet.bench.iperf import IperfError, Sample
from silonet.lab import GatewaySpec, Group, Host, Lab, LabError, LabTopology, Silo, Tor
from silonet.lab.netns import add_netns, add_veth, del_netns, ip, netns_exists, netns_pids, ns_argv, run, which

BASE_VLAN, GATEWAY_VNI, SOFTWARE_VNI = 100, 10100, 20100
BASE_PORT = 5201
VM_A, VM_B = "198.51.100.1", "198.51.100.2"
class BenchError(RuntimeError):
    """The benchmark could not run; the message says what failed and where."""


# ---------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    sizes: list[int] = field(default_factory=lambda: list(PAPER_SIZES))
    pairs: list[int] = field(default_factory=lambda: list(PAPER_PAIRS))
    modes: list[str] = field(default_factory=lambda: list(MODES))
    duration: int = DEFAULT_DURATION
    repeat: int = 1
    udp: bool = False
    out: Path = Path("bench-results/dataplane")
    lab_dir: Path = Path(".lab")
    prefix: str = "sd"
    index: int = 10
    keep_lab: bool = False  # leave the lab up afterwards (the next run reuses it)
    inventory: Path | None = None  # real gateways: see load_inventory
    server: str | None = None  # a running `silonet serve` instead of the in-process manager

    def runs(self) -> int:
        return len(self.sizes) * len(self.pairs) * len(self.modes) * self.repeat


# ---------------------------------------------------------------------------------------- endpoints
@dataclass(frozen=True)
class Endpoint:
    """Where a VM's commands run (``argv`` prefix: ``ip netns exec NS`` or ``ssh HOST``) and its address."""

    where: tuple[str, ...]
    ip: str
    label: str = ""

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [*self.where, *argv]

    @classmethod
    def netns(cls, ns: str, ip: str) -> Endpoint:
        return cls(tuple(ns_argv(ns, [])), ip, ns)

    @classmethod
    def ssh(cls, target: str, ip: str) -> Endpoint:
        return cls(("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", target), ip, target)


@dataclass(frozen=True)
class PairPath:
    index: int  # 1-based
    client: Endpoint
    server: Endpoint


# ---------------------------------------------------------------------------------------- topology
def bench_topology(pairs: int) -> LabTopology:
    """Two silos, one gateway each, one ToR each; pair i = host a<i> (silo A) and b<i> (silo B) on
    VLAN 100+i, addresses 203.0.113.i and 203.0.113.(100+i)."""
    if not 1 <= pairs <= 99:
        raise BenchError(f"pairs must be 1..99, not {pairs}")

    def hosts(side: str, base: int) -> tuple[Host, ...]:
        return tuple(Host(f"{side}{i}", BASE_VLAN + i, f"203.0.113.{base + i}") for i in range(1, pairs + 1))

    return LabTopology(
        name="dataplane", description=f"bench dataplane: two silos, {pairs} VM pair(s), pair i on VLAN 100+i",
        gateways=(GatewaySpec("gw-a", "silo-a"), GatewaySpec("gw-b", "silo-b")),
        silos=(
            Silo("silo-a", "kvm", (Group("ga", (Tor("gw-a", "p1", hosts("a", 0), "tor-a"),)),), "hypervisors A"),
            Silo("silo-b", "kvm", (Group("gb", (Tor("gw-b", "p1", hosts("b", 100), "tor-b"),)),), "hypervisors B"),
        ),
    )


# ---------------------------------------------------------------------------------------- plumbing
class Plumbing:
    """The software and ceiling paths: two hypervisor namespaces and per pair and mode two VM
    namespaces. Every namespace is recorded in ``state`` before it is made; ``down`` deletes them."""

    def __init__(self, prefix: str, index: int, state: Path) -> None:
        self.prefix, self.index, self.state = prefix, index, state
        self.hv = {"a": f"{prefix}-k-hva", "b": f"{prefix}-k-hvb"}
        self.underlay = {"a": f"198.19.{index}.1", "b": f"198.19.{index}.2"}

    def vm(self, mode: str, i: int, side: str) -> str:
        return f"{self.prefix}-k-{mode[0]}{i}{side}"

    def _record(self, ns: str) -> None:
        data = json.loads(self.state.read_text()) if self.state.exists() else {"netns": []}
        if ns not in data["netns"]:
            data["netns"].append(ns)
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps(data, indent=1))

    def _ns(self, ns: str) -> None:
        if netns_exists(ns):
            raise BenchError(f"namespace {ns} exists already (another bench running? `ip netns del {ns}` if not)")
        self._record(ns)
        add_netns(ns)

    def up(self, pairs: int, modes: Sequence[str]) -> dict[str, list[PairPath]]:
        out: dict[str, list[PairPath]] = {}
        for side in "ab":
            self._ns(self.hv[side])
        add_veth("ul0", self.hv["a"], "ul0", self.hv["b"], UNDERLAY_MTU)
        for side in "ab":
            ip("addr", "add", f"{self.underlay[side]}/24", "dev", "ul0", ns=self.hv[side])
            ip("link", "set", "ul0", "up", ns=self.hv[side])
        for mode in (m for m in ("ceiling", "software") if m in modes):
            out[mode] = [self._pair(mode, i) for i in range(1, pairs + 1)]
        return out

    def _pair(self, mode: str, i: int) -> PairPath:
        ends = {}
        for side, addr in (("a", VM_A), ("b", VM_B)):
            vm, hv, port, br = self.vm(mode, i, side), self.hv[side], f"{mode[0]}{i}", f"b{mode[0]}{i}"
            self._ns(vm)
            add_veth("eth0", vm, port, hv, MTU)
            ip("addr", "add", f"{addr}/24", "dev", "eth0", ns=vm)
            ip("link", "set", "eth0", "up", ns=vm)
            ip("link", "add", br, "mtu", str(MTU), "type", "bridge", ns=hv)
            ip("link", "set", port, "master", br, "up", ns=hv)
            ends[side] = Endpoint.netns(vm, addr)
        for side, other in (("a", "b"), ("b", "a")):
            hv, br = self.hv[side], f"b{mode[0]}{i}"
            if mode == "software":
                link = f"vx{i}"
                ip("link", "add", link, "mtu", str(MTU), "type", "vxlan", "id", str(SOFTWARE_VNI + i),
                   "local", self.underlay[side], "remote", self.underlay[other], "dstport", "4789", ns=hv)
            else:
                link = f"w{i}"
                if side == "a":
                    add_veth(link, self.hv["a"], link, self.hv["b"], MTU)
            ip("link", "set", link, "master", br, "up", ns=hv)
            ip("link", "set", br, "up", ns=hv)
        return PairPath(i, ends["a"], ends["b"])

    def down(self) -> list[str]:
        """Delete every recorded namespace (their veths, bridges and VXLAN devices go with them)."""
        if not self.state.exists():
            return []
        notes = []
        try:
            names = json.loads(self.state.read_text()).get("netns", [])
        except (OSError, ValueError):
            names = []
        for ns in reversed(names):
            if not str(ns).startswith(f"{self.prefix}-k-"):
                continue  # only names this class makes
            pids = netns_pids(ns)
            if pids:
                notes.append(f"namespace {ns} still holds processes {pids}")
            del_netns(ns)
        self.state.unlink(missing_ok=True)
        return notes


# ---------------------------------------------------------------------------------------- iperf3
def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop one process we started, by its Popen handle (its own process group: ip netns exec + iperf3)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)


def _listening(ep: Endpoint, port: int) -> bool:
    proc = run(ep.argv(["ss", "-Hltn", f"sport = :{port}"]), check=False, timeout=10)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def measure(paths: Sequence[PairPath], size: int, duration: int, udp: bool) -> list[Sample]:
    """One run: a one-off iperf3 server per pair, then every client at once; bounded by -t and timeouts."""
    servers: list[subprocess.Popen[str]] = []
    clients: list[subprocess.Popen[str]] = []
    try:
        for p in paths:
            port = BASE_PORT + p.index
            argv = p.server.argv(["iperf3", "-s", "-1", "-B", p.server.ip, "-p", str(port),
                                  "--idle-timeout", str(duration + 30)])
            servers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                                            start_new_session=True))
        for p in paths:
            deadline = time.monotonic() + 5
            while not _listening(p.server, BASE_PORT + p.index):
                if time.monotonic() > deadline:
                    raise BenchError(f"iperf3 server in {p.server.label} did not listen within 5 s")
                time.sleep(0.05)
        for p in paths:
            argv = p.client.argv(["iperf3", "-c", p.server.ip, "-p", str(BASE_PORT + p.index), "-t", str(duration),
                                  "-l", str(size), "-i", "1", "-J", "--connect-timeout", "3000",
                                  *(("-u", "-b", "0") if udp else ())])
            clients.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            start_new_session=True))
        deadline = time.monotonic() + duration + 20
        samples = []
        for p, c in zip(paths, clients, strict=True):
            try:
                out, err = c.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BenchError(f"iperf3 client in {p.client.label} did not finish within {duration + 20} s") from None
            try:
                samples.append(iperf.parse(out))
            except IperfError as e:
                raise BenchError(f"pair {p.index} ({p.client.label} -> {p.server.ip}), size {size}: {e}"
                                 f"{' / ' + err.strip()[-200:] if err.strip() else ''}") from None
        return samples
    finally:
        for proc in (*clients, *servers):
            _stop(proc)


def reachable(p: PairPath, timeout: float) -> bool:
    """Bounded ping from client to server (gateways learn MACs meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        argv = p.client.argv(["ping", "-n", "-q", "-c", "1", "-W", "1", p.server.ip])
        if run(argv, check=False, timeout=10).returncode == 0:
            return True
    return False


# ---------------------------------------------------------------------------------------- silonet API
@contextlib.contextmanager
def silonet_client(server: str | None, workdir: Path) -> Iterator[Any]:
    """An HTTP client of silonet: a running server (``--server URL``, token from SILONET_ADMIN_TOKEN),
    or the manager and its reconciler in-process on a throwaway SQLite database."""
    if server:
        import httpx

        token = os.environ.get("SILONET_ADMIN_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=server, headers=headers, timeout=60) as client:
            yield client
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation note about httpx
        from fastapi.testclient import TestClient

    from silonet.api.app import create_app
    from silonet.config import Settings as ManagerSettings
    from silonet.reconcile import Reconciler
    from silonet.runtime import Runtime
    from silonet.service import Manager
    from silonet.service.auth import new_secret
    from silonet.store.db import Database

    db = Database(f"sqlite:///{workdir / 'silonet.db'}")
    db.upgrade()
    try:
        token, runtime = new_secret(), Runtime(db)
        settings = ManagerSettings(database_url=db.url, vni_pool=range(30000, 30100), admin_token=token)
        manager = Manager(runtime, settings)
        with TestClient(create_app(manager, Reconciler(runtime, period=5.0, poll=0.5)),
                        headers={"Authorization": f"Bearer {token}"}) as client:
            yield client
    finally:
        db.dispose()


def _ok(resp: Any, what: str, *codes: int) -> Any:
    if resp.status_code not in codes:
        raise BenchError(f"silonet API: {what} answered {resp.status_code}: {resp.text[:300]}")
    return resp


def configure_gateways(client: Any, inventory: dict[str, Any], attachments: Sequence[tuple[str, int, str, int]],
                       tenant: str = "bench") -> list[str]:
    """``POST /v1/apply`` the inventory, then one network per pair with both attachments (?wait=30).
    ``attachments``: (group A, VLAN A, group B, VLAN B) per pair. Returns the network names."""
    _ok(client.post("/v1/apply", json=inventory), "apply inventory", 200, 201)
    names = []
    for i, (ga, va, gb, vb) in enumerate(attachments, start=1):
        name = f"bench-dp-{i}"
        if client.get(f"/v1/networks/{name}").status_code == 200:
            _ok(client.delete(f"/v1/networks/{name}?cascade=true&wait=30"), f"delete stale {name}", 204)
        _ok(client.post("/v1/networks", json={"name": name, "tenant": tenant, "vni": GATEWAY_VNI + i}),
            f"create {name}", 201)
        names.append(name)
        for group, vlan in ((ga, va), (gb, vb)):
            r = _ok(client.post(f"/v1/networks/{name}/attachments?wait=30",
                                json={"interface_group": group, "vlan": vlan}), f"attach {group}/{vlan}", 201)
            if r.json().get("status") not in (None, "realized"):
                raise BenchError(f"attachment {group}/{vlan} of {name}: {r.json()}")
    return names


def unconfigure_gateways(client: Any, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            client.delete(f"/v1/networks/{name}?cascade=true&wait=30")


# ---------------------------------------------------------------------------------------- inventory
def load_inventory(path: Path) -> tuple[dict[str, Any], list[tuple[PairPath, tuple[str, int, str, int]]]]:
    """Real gateways: a ``silonet apply -f`` inventory (silos, gateways, interface_groups) plus a
    ``bench`` section naming the VM pairs and how to reach them:

        bench:
          pairs:
            - a: {netns: vm1, ip: 203.0.113.1, interface_group: vsa, vlan: 101}
              b: {ssh: root@198.18.40.12, ip: 203.0.113.101, interface_group: kvm1, vlan: 101}

    ``netns`` runs iperf3 with ``ip netns exec``, ``ssh`` with ``ssh -o BatchMode=yes`` (key auth;
    iperf3 installed there). Returns the inventory to apply and (pair path, attachments) per pair."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BenchError(f"cannot read inventory {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("bench"), dict):
        raise BenchError(f"{path}: needs a 'bench: {{pairs: [...]}}' section next to the inventory")
    bench = data.pop("bench")
    pairs = []
    for i, p in enumerate(bench.get("pairs") or [], start=1):
        try:
            ends = []
            for side in ("a", "b"):
                e = p[side]
                ep = Endpoint.ssh(str(e["ssh"]), str(e["ip"])) if "ssh" in e else Endpoint.netns(str(e["netns"]),
                                                                                               str(e["ip"]))
                ends.append((ep, str(e["interface_group"]), int(e["vlan"])))
        except (KeyError, TypeError, ValueError) as err:
            raise BenchError(f"{path}: bench pair {i}: missing or bad {err}") from None
        (a, ga, va), (b, gb, vb) = ends
        pairs.append((PairPath(i, a, b), (ga, va, gb, vb)))
    if not pairs:
        raise BenchError(f"{path}: bench.pairs is empty")
    return data, pairs


# ---------------------------------------------------------------------------------------- the run
def check_host(settings: Settings) -> None:
    if os.geteuid() != 0:
        raise BenchError("the dataplane benchmark creates network namespaces: run it as root")
    missing = [b for b in ("iperf3", "ip", "ss", "ping") if which(b) is None]
    if missing:
        raise BenchError(f"missing programs: {', '.join(missing)} (apt-get install iperf3 iproute2 iputils-ping)")
    bad = [m for m in settings.modes if m not in MODES]
    if bad:
        raise BenchError(f"unknown mode(s) {', '.join(bad)}; modes are {', '.join(MODES)}")
    if settings.duration < 1 or settings.repeat < 1:
        raise BenchError("--duration and --repeat must be >= 1")
    if settings.inventory and set(settings.modes) - {"gateway"}:
        raise BenchError("with --inventory only the gateway mode runs (software and ceiling need the lab); "
                         "add --modes gateway")


def main(settings: Settings, show_progress: bool = True) -> dict[str, Any]:
    """Run the matrix and write results.csv, results.json and the PNGs under ``settings.out``."""
    check_host(settings)
    max_pairs = max(settings.pairs)
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    plumbing = Plumbing(settings.prefix, settings.index, settings.lab_dir / f"{settings.prefix}-dataplane.json")
    notes = plumbing.down()  # leftovers of an interrupted run
    lab: Lab | None = None
    built_lab = False
    paths: dict[str, list[PairPath]] = {}
    raw: list[dict[str, Any]] = []
    by_point: dict[tuple[str, int, int], list[list[Sample]]] = {}
    t_start = time.monotonic()
    setup_s = 0.0
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="silonet-dp-")))
        stack.callback(lambda: notes.extend(plumbing.down()))
        if "gateway" in settings.modes:
            if settings.inventory:
                inventory, inv_pairs = load_inventory(settings.inventory)
                if max_pairs > len(inv_pairs):
                    raise BenchError(f"--pairs up to {max_pairs}, but {settings.inventory} names {len(inv_pairs)}")
                attachments = [a for _, a in inv_pairs]
                paths["gateway"] = [p for p, _ in inv_pairs]
            else:
                lab, built_lab = _lab(settings, max_pairs)
                if built_lab and not settings.keep_lab:
                    stack.callback(lab.down)
                inventory = lab.inventory()
                attachments = [("ga", BASE_VLAN + i, "gb", BASE_VLAN + i) for i in range(1, max_pairs + 1)]
                layout = lab.layout()
                paths["gateway"] = [PairPath(i, Endpoint.netns(layout.host(f"a{i}").netns, layout.host(f"a{i}").ip),
                                             Endpoint.netns(layout.host(f"b{i}").netns, layout.host(f"b{i}").ip))
                                    for i in range(1, max_pairs + 1)]
            client = stack.enter_context(silonet_client(settings.server, workdir))
            names = configure_gateways(client, inventory, attachments)
            stack.callback(unconfigure_gateways, client, names)
        paths.update(plumbing.up(max_pairs, settings.modes))
        for mode in settings.modes:
            for p in paths[mode]:
                if not reachable(p, 30 if mode == "gateway" else 10):
                    raise BenchError(f"{mode}: pair {p.index} ({p.client.label} -> {p.server.ip}) does not ping")
        setup_s = time.monotonic() - t_start
        todo = [(n, s, m, r) for n in settings.pairs for s in settings.sizes for m in settings.modes
                for r in range(settings.repeat)]
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            disable=not show_progress)
        t_runs = time.monotonic()
        with progress:
            task = progress.add_task("dataplane", total=len(todo))
            for n, size, mode, rep in todo:
                progress.update(task, description=f"{mode:8} {n:2} pair(s) {size:5} B")
                samples = measure(paths[mode][:n], size, settings.duration, settings.udp)
                by_point.setdefault((mode, size, n), []).append(samples)
                for p, s in zip(paths[mode][:n], samples, strict=True):
                    raw.append({"mode": mode, "size": size, "pairs": n, "repeat": rep, "pair": p.index,
                                **asdict(s)})
                progress.advance(task)
        runs_s = time.monotonic() - t_runs
    points = [iperf.aggregate(m, s, n, reps) for (m, s, n), reps in sorted(by_point.items())]
    overhead = max(0.0, runs_s / max(1, len(todo)) - settings.duration)
    report = dpreport.report(settings, points, raw, setup_s, runs_s, overhead, notes, lab is not None)
    dpreport.write(out, settings, points, report)
    dpreport.summary(settings, points, report)
    return report


def _lab(settings: Settings, pairs: int) -> tuple[Lab, bool]:
    """Reuse a lab of this prefix that is up with the bench topology for >= pairs; else build one."""
    lab = Lab(settings.prefix, settings.index, settings.lab_dir)
    if lab.exists():
        try:
            topo = lab.layout().topology
            ok = Lab.is_up(settings.prefix, settings.lab_dir) and topo.name == "dataplane" and all(
                any(h.name == f"{side}{i}" for *_, h in topo.hosts()) for side in "ab" for i in range(1, pairs + 1))
        except (LabError, KeyError, ValueError):
            ok = False
        if ok:
            return lab, False
        lab.down()
        lab = Lab(settings.prefix, settings.index, settings.lab_dir)
    try:
        lab.up(bench_topology(pairs))
    except BaseException:
        lab.down()
        raise
    return lab, True
