"""`./run demo`: the main job end to end on this machine.

Starts the manager on a fresh SQLite store, applies the example topology through the REST
API with the CLI, and shows what silonet would do on every gateway. (The gateways issue
makes this drive real emulated gateways and ping across silos.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
console = Console()


def free_port(preferred: int = 8080) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "SILONET_DATA_DIR": str(data_dir)}
    env.pop("SILONET_DATABASE_URL", None)
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen([sys.executable, "-m", "silonet.cli.main", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    (data_dir / "server.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {data_dir / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not answer /healthz within 30 s")


def cli(server: str, *args: str) -> None:
    console.rule(f"[bold]silonet {' '.join(args)}")
    subprocess.run([sys.executable, "-m", "silonet.cli.main", "--server", server, *args], check=True)


def main() -> None:
    data_dir = Path(os.environ.get("SILONET_DEMO_DIR", ROOT / ".demo"))
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("silonet.db*"):
        old.unlink()
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    console.print(f"[bold]starting silonet serve[/] on {server} (SQLite in {data_dir})")
    proc = start_server(data_dir, port)
    try:
        topology = str(ROOT / "examples" / "topology.yaml")
        cli(server, "apply", "-f", topology)
        cli(server, "apply", "-f", topology)  # idempotent: no changes
        cli(server, "network", "list")
        cli(server, "gateway", "list")
        cli(server, "plan")
        cli(server, "status")
        console.rule("[bold]done")
        console.print(f"API docs were at {server}/docs; the server log is {data_dir / 'server.log'}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        (data_dir / "server.pid").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
