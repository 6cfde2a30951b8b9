"""`./run demo`: the main job end to end on this machine.

Builds the paper's lab (five silos, seven emulated hardware VXLAN gateways, two of them a redundant
pair behind the PaaS silo, eighteen hosts in network namespaces), starts the manager on SQLite with
its reconciler, applies the lab's inventory, joins vsphere-a VLAN 100, kvm VLAN 300, bare-metal
untagged and PaaS VLAN 500 into one virtual network through the REST API, and pings every pair of
hosts across the silos. The lab and
the manager keep running afterwards so you can look around; `./run down` removes both.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from silonet.config import lab_dir, secrets_dir
from silonet.lab import Lab, paper_topology

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = Path(os.environ.get("SILONET_DEMO_DIR", ROOT / ".demo"))
LAB_DIR = lab_dir()
NETWORK = {"name": "demo", "tenant": "acme", "vni": 5000}
JOINED = [("vsa", 100), ("kvm1", 300), ("bm", 0), ("paas", 500)]
console = Console(width=None if os.isatty(1) else 120)


def free_port(preferred: int = 8080) -> int:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server's TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def stop_server() -> None:
    """Stop a demo server left running, by its pid file."""
    pidfile = DEMO_DIR / "server.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink(missing_ok=True)


def admin_token() -> str:
    """The demo server's admin token, new per demo, kept 0600 next to its database."""
    from silonet.service.auth import new_secret

    token = new_secret()
    path = DEMO_DIR / "admin-token"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def start_server(port: int, token: str) -> str:
    # the secrets directory of this process, where the lab keeps its client key (an ssh lab's inventory)
    env = {**os.environ, "SILONET_DATA_DIR": str(DEMO_DIR), "SILONET_ADMIN_TOKEN": token,
           "SILONET_SECRETS_DIR": str(secrets_dir())}
    env.pop("SILONET_DATABASE_URL", None)
    log = open(DEMO_DIR / "server.log", "w")  # noqa: SIM115 (handed to the server process)
    proc = subprocess.Popen([sys.executable, "-m", "silonet.cli.main", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (DEMO_DIR / "server.pid").write_text(str(proc.pid))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {DEMO_DIR / 'server.log'}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer within 30 s; see {DEMO_DIR / 'server.log'}")


def cli(server: str, token: str, *args: str) -> None:
    console.rule(f"[bold]silonet {' '.join(args)}")
    subprocess.run([sys.executable, "-m", "silonet.cli.main", "--server", server, *args], check=True,
                   env={**os.environ, "SILONET_TOKEN": token})


def build_lab() -> Lab:
    lab = Lab(prefix="sn", index=0, base_dir=LAB_DIR)
    if lab.exists():
        console.print("tearing down the previous demo lab")
        lab.down()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("lab up", total=1)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"lab up: {what}", completed=done, total=total)

        lab.up(paper_topology(), progress)
    return lab


def ping_all(lab: Lab, hosts: list[dict]) -> tuple[Table, bool]:
    table = Table(title="ping: every pair of hosts in network 'demo'", title_justify="left")
    for col in ("from", "silo", "VLAN", "to", "silo", "VLAN", "result"):
        table.add_column(col)
    ok_all = True
    for a, b in itertools.combinations(hosts, 2):
        ok = lab.ping(a["name"], b["ip"], count=2, timeout=1)
        ok_all &= ok
        table.add_row(a["name"], a["silo"], str(a["vlan"] or "untagged"), b["name"], b["silo"],
                      str(b["vlan"] or "untagged"), "[green]ok[/]" if ok else "[red]FAILED[/]")
    return table, ok_all


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the demo builds network namespaces: run it as root")
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    stop_server()
    for old in DEMO_DIR.glob("silonet.db*"):
        old.unlink()
    lab = build_lab()
    token = admin_token()
    server = start_server(free_port(), token)
    console.print(f"[bold]silonet serve[/] on {server} (SQLite in {DEMO_DIR}, reconciler on)")
    inventory = DEMO_DIR / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(lab.inventory(), sort_keys=False))
    cli(server, token, "apply", "-f", str(inventory))
    http = httpx.Client(base_url=server, timeout=60, headers={"Authorization": f"Bearer {token}"})
    http.post("/v1/networks", json=NETWORK).raise_for_status()
    first_attach = time.monotonic()
    realized: list[tuple[str, int, float, str]] = []
    for group, vlan in JOINED:
        t0 = time.monotonic()
        r = http.post("/v1/networks/demo/attachments?wait=30", json={"interface_group": group, "vlan": vlan})
        r.raise_for_status()
        realized.append((group, vlan, (time.monotonic() - t0) * 1000, r.json()["status"]))
    status = {s["name"]: s for s in lab.status()["silos"]}
    hosts = [dict(h, silo=silo) for silo, s in status.items() for h in s["hosts"]
             if (h["interface_group"], h["vlan"]) in JOINED]
    src, dst = hosts[0], next(h for h in hosts if h["silo"] != hosts[0]["silo"])
    deadline = time.monotonic() + 30
    while not lab.ping(src["name"], dst["ip"], count=1, timeout=0.5) and time.monotonic() < deadline:
        pass
    first_ping_ms = (time.monotonic() - first_attach) * 1000
    cli(server, token, "network", "show", "demo")
    cli(server, token, "status")
    table, ok_all = ping_all(lab, hosts)
    console.print(table)
    timing = Table(title="timings", title_justify="left")
    for col in ("attachment", "attach -> realized on every gateway", "status"):
        timing.add_column(col)
    for group, vlan, ms, st in realized:
        timing.add_row(f"{group} VLAN {vlan}", f"{ms:.0f} ms", st)
    timing.add_row("first attach -> first ping across silos", f"{first_ping_ms:.0f} ms",
                   "ovs-vtep polls its database about once a second")
    console.print(timing)
    console.print(f"""
[bold]Explore[/] (the lab and the manager keep running):
  . .venv/bin/activate; export SILONET_SERVER={server} SILONET_TOKEN=$(cat {DEMO_DIR / 'admin-token'})
  silonet status                      # every gateway: reachable, generations, drift, faults
  silonet plan                        # what the next reconcile would change (nothing, now)
  silonet lab status                  # silos, hosts, gateways
  silonet attach demo vsb 200 --wait 30   # join vsphere-b's row pair too
  silonet lab fault gw-pa down; silonet network show demo   # the PaaS pair fails over: degraded, still pinging
  silonet lab fault gw-pa up                # back, resynced: realized again
  ip netns exec {src['netns']} ping {dst['ip']}
  Web console: {server}/ui  (log in with the admin token in {DEMO_DIR / 'admin-token'})
  API docs: {server}/docs
[bold]Tear down[/]: ./run down""")
    if not ok_all:
        raise SystemExit("some pings failed: see the table above and `silonet status`")


def down() -> None:
    stop_server()
    lab = Lab(prefix="sn", index=0, base_dir=LAB_DIR)
    if lab.exists():
        lab.down()
    console.print("demo server stopped and lab removed")


if __name__ == "__main__":
    down() if sys.argv[1:] == ["down"] else main()
