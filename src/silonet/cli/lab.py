"""`silonet lab up|down|status|inventory|topology|fault`: the emulated data center in network
namespaces. The lab is the ``lab`` extra: imported when a command runs, never with the CLI."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from silonet.cli import render
from silonet.cli.extras import require
from silonet.config import lab_dir

if TYPE_CHECKING:
    from rich.progress import Progress

    from silonet.lab import LabTopology

lab_app = typer.Typer(help="The lab: silos, ToRs, hosts and emulated VXLAN gateways in network namespaces.",
                      no_args_is_help=True)

PrefixOpt = Annotated[str, typer.Option(envvar="SILONET_LAB_PREFIX",
                                        help="1..4 characters prefixing the lab's namespaces and interfaces")]
IndexOpt = Annotated[int, typer.Option(envvar="SILONET_LAB_INDEX",
                                       help="0..127: lab k uses 198.18.2k.0/24 (underlay), 198.18.2k+1.0/24 (mgmt)")]
LAB_DIR = lab_dir()
DirOpt = Annotated[Path, typer.Option("--dir", envvar="SILONET_LAB_DIR", help="state, daemon sockets and logs")]
TopologyOpt = Annotated[str, typer.Option(help="'paper' or a lab topology YAML file")]


class LabDriver(StrEnum):
    ovsdb = "ovsdb"
    ssh = "ssh"
    mixed = "mixed"


class FaultAction(StrEnum):
    down = "down"
    up = "up"


SERVE_DEFAULT_URL = "http://127.0.0.1:8080"  # `silonet serve` without --host/--port
DRIVER_HELP = ("how the inventory manages the gateways: ovsdb (OVSDB over TCP), ssh (vtep-ctl over OpenSSH) or "
               "mixed (alternating, the first one ovsdb); ssh and mixed run sshd in every gateway")


def _topology(spec: str) -> LabTopology:
    from silonet.lab import load_topology, paper_topology

    return paper_topology() if spec == "paper" else load_topology(spec)


@lab_app.command("up")
def up(topology: TopologyOpt = "paper", prefix: PrefixOpt = "sn", index: IndexOpt = 0,
       dir_: DirOpt = LAB_DIR,
       driver: Annotated[LabDriver, typer.Option(help=DRIVER_HELP)] = LabDriver.ovsdb) -> None:
    """Build the lab: namespaces, OVS gateways with ovs-vtep (and sshd), ToRs and hosts."""
    require("lab")
    from silonet.lab import Lab

    lab = Lab(prefix, index, dir_)
    topo = _topology(topology)
    started = time.monotonic()
    bar = _LazyBar(f"lab '{prefix}'")
    try:
        lab.up(topo, progress=bar.show, driver=driver.value)
    finally:
        bar.close()
    data = lab.status()
    _summary(data)
    render.out.print(f"lab '{prefix}' is up in {time.monotonic() - started:.1f} s; "
                     f"`silonet lab inventory > lab.yaml` gives its topology for `silonet apply -f`")
    render.out.print(f"web console: {SERVE_DEFAULT_URL}/ui once `silonet serve` runs on its default address "
                     "(log in with its SILONET_ADMIN_TOKEN)", markup=False, highlight=False)
    if data.get("known_hosts"):
        render.out.print("ssh gateways: the inventory carries each gateway's host key (management.host_key); "
                         f"for OpenSSH's client: -o UserKnownHostsFile={data['known_hosts']}", markup=False,
                         highlight=False)


@lab_app.command("down")
def down(prefix: PrefixOpt = "sn", dir_: DirOpt = LAB_DIR) -> None:
    """Remove everything the lab made (daemons, namespaces, interfaces, its directory)."""
    require("lab")
    from silonet.lab import Lab

    lab = Lab(prefix, 0, dir_)
    if not lab.exists():
        render.out.print(f"lab '{prefix}' is not up (no state under {lab.dir}); nothing to do")
        return
    started = time.monotonic()
    for note in lab.down():
        render.err.print(f"[yellow]warning:[/yellow] {note}", markup=True, highlight=False)
    render.out.print(f"lab '{prefix}' is down in {time.monotonic() - started:.1f} s")


@lab_app.command("status")
def status(prefix: PrefixOpt = "sn", dir_: DirOpt = LAB_DIR,
           json_: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False) -> None:
    """Hosts (namespace, VLAN, address, group) and gateways (namespace, management, daemons)."""
    require("lab")
    from silonet.lab import Lab, LabError

    lab = Lab(prefix, 0, dir_)
    if not lab.exists():
        raise LabError(f"lab '{prefix}' is not up (no state under {lab.dir}); run `silonet lab up`")
    data = lab.status()
    if json_:
        render.as_json(data)
        return
    _summary(data)
    if data["missing"]:
        render.err.print(f"[red]missing (deleted by hand? rebooted?):[/red] {' '.join(data['missing'])}; "
                         "run `silonet lab down` and `silonet lab up`", markup=True, highlight=False)
    if data["phase"] != "up":
        render.err.print(f"[red]lab '{prefix}' is {data['phase']}:[/red] {data['error']}", markup=True,
                         highlight=False)


@lab_app.command("inventory")
def inventory(prefix: PrefixOpt = "sn", index: IndexOpt = 0, dir_: DirOpt = LAB_DIR,
              topology: Annotated[str | None, typer.Option(help="'paper' or a file: lay it out at --index "
                                                                 "without the lab being up")] = None,
              driver: Annotated[LabDriver | None, typer.Option(help="with --topology: " + DRIVER_HELP + "; "
                                                               "default: the running lab's (or ovsdb)")] = None,
              ) -> None:
    """Print the lab's inventory as topology YAML for `silonet apply -f` (no networks)."""
    require("lab")
    import yaml

    from silonet.lab import Lab, LabError

    lab = Lab(prefix, index, dir_)
    if topology is None and not lab.exists():
        raise LabError(f"lab '{prefix}' is not up (no state under {lab.dir}); run `silonet lab up` or pass --topology")
    data = lab.inventory(_topology(topology) if topology else None, driver.value if driver else None)
    render.out.print(yaml.safe_dump(data, sort_keys=False), end="", markup=False, highlight=False)


@lab_app.command("fault")
def fault(gateway: Annotated[str, typer.Argument(help="a lab gateway, paired or not")],
          action: Annotated[FaultAction, typer.Argument(help="down: fails like a device; up: boots again")],
          prefix: PrefixOpt = "sn", dir_: DirOpt = LAB_DIR,
          json_: Annotated[bool, typer.Option("--json", help="print JSON instead of lines")] = False) -> None:
    """Take a gateway down as a device failure (daemons stopped, links down; an active pair member
    fails over to its partner) or bring it back (links up, daemons on the databases it had)."""
    require("lab")
    from silonet.lab import Lab, LabError

    lab = Lab(prefix, 0, dir_)
    if not lab.exists():
        raise LabError(f"lab '{prefix}' is not up (no state under {lab.dir}); run `silonet lab up`")
    result = lab.fault(gateway, action.value)
    if json_:
        render.as_json(result)
        return
    for line in result["done"]:
        render.out.print(line, markup=False, highlight=False)
    pair = f"; pair {result['pair']}: {result['active']} active" if result["pair"] else ""
    failover = f", failover {result['failover']['ms']} ms" if result["failover"] else ""
    render.out.print(f"gateway {result['gateway']} is {action.value} in {result['ms']} ms{failover}{pair}",
                     markup=False, highlight=False)


@lab_app.command("topology")
def topology_(topology: TopologyOpt = "paper") -> None:
    """Print a lab topology as YAML: a starting point for `silonet lab up --topology FILE`."""
    require("lab")
    import yaml

    render.out.print(yaml.safe_dump(_topology(topology).to_dict(), sort_keys=False), end="", markup=False,
                     highlight=False)


class _LazyBar:
    """A progress bar that appears with the first build step, not for errors found before it."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.bar: Progress | None = None
        self.task: Any = None

    def show(self, label: str, done: int, total: int) -> None:
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=render.err)
            self.bar.start()
            self.task = self.bar.add_task(self.title, total=total)
        self.bar.update(self.task, description=f"{self.title}: {label}", completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _summary(data: dict[str, Any]) -> None:
    def daemons(d: dict[str, int | None]) -> Text:
        up = sum(1 for pid in d.values() if pid)
        down = ", ".join(n for n, pid in d.items() if not pid)
        return Text(f"{up}/{len(d)}", "green") if not down else Text(f"{up}/{len(d)} ({down} down)", "red")

    def managed(g: dict[str, Any]) -> str:
        return f"{g['driver']} {g['ssh'] if g.get('driver') == 'ssh' else g['ovsdb']}"

    def state(g: dict[str, Any]) -> Text:
        if g.get("down"):
            return Text("down (fault)", "red")
        return daemons(g["daemons"])

    def pair(g: dict[str, Any]) -> str:
        return f"{g['pair']} {'active' if g['active'] else 'standby'}" if g.get("pair") else ""

    p = data["prefix"]
    driver = data.get("driver") or "ovsdb"
    paired = any(g.get("pair") for g in data["gateways"])
    render.table(
        f"Lab '{p}' gateways: namespaces {p}-<gateway>, underlay {data['underlay']}, management {data['management']}, "
        f"driver {driver}" + (f", known_hosts {data['known_hosts']}" if data.get("known_hosts") else ""),
        ["gateway", "silo", *(["pair"] if paired else []), "vtep ip", "managed by",
         *(["ssh"] if driver != "ovsdb" else []), "vtep ports", "daemons"],
        [[g["name"], g["silo"], *([pair(g)] if paired else []), g["vtep_ip"], managed(g),
          *([g["ssh"]] if driver != "ovsdb" else []), " ".join(g["vtep_ports"]), state(g)]
         for g in data["gateways"]])
    render.table(
        f"Lab '{p}' hosts: namespaces {p}-<host>, interface eth0",
        ["silo", "group", "host", "vlan", "ip", "ToR uplink"],
        [[s["name"], h["interface_group"], h["name"], h["vlan"] or "untagged", h["ip"], f"{h['gateway']}:{h['port']}"]
         for s in data["silos"] for h in s["hosts"]])
    if data.get("dual_homed_tors"):
        render.table(
            f"Lab '{p}' dual-homed ToRs: own namespace and ovs-vswitchd, one trunk per pair member",
            ["ToR", "namespace", "group", "pair", "uplink in use", "daemons"],
            [[t["name"], t["netns"], t["interface_group"], t["pair"], f"{t['uplinks'][t['active']]} -> "
              f"{t['active']}:{t['port']}", daemons(t["daemons"])] for t in data["dual_homed_tors"]])
