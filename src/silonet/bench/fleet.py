"""What the control-plane benchmark runs against: N real ``ovsdb-server`` processes with the
hardware_vtep schema (no ovs-vtep: no data plane is needed) and a real ``silonet serve``.

Everything lives under one work directory and is stopped by its pid files (and noted in the
bench's registry, ``bench/lifecycle.py``, so a signal or a crash leaves nothing behind); nothing
is killed by name. Only loopback: OVSDB on 127.0.0.1, tunnel IPs from 198.18.0.0/15.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from silonet.bench import lifecycle
from silonet.bench.figures import tree_cpu_s
from silonet.devices.vtepdb import VtepDb, free_port, free_ports
from silonet.service.auth import new_secret

TUNNEL_BASE = ipaddress.ip_address("198.18.64.0")  # inside 198.18.0.0/15, clear of the labs


def tunnel_ip(i: int) -> str:
    return str(TUNNEL_BASE + i + 1)


class Fleet:
    """``count`` gateways ``<prefix>-gw-NNN``, each a vtep ovsdb-server with ``ports``."""

    def __init__(self, workdir: Path, count: int, ports: tuple[str, ...] = ("p1", "p2"), prefix: str = "bc") -> None:
        self.dir = workdir
        self.prefix = prefix
        tcp = free_ports(count)  # distinct: two servers on one port would be one device for two gateways
        self.dbs = [VtepDb(workdir / f"gw{i:03d}", name=f"{prefix}-gw-{i:03d}", tunnel_ip=tunnel_ip(i), ports=ports,
                           port=tcp[i]) for i in range(count)]

    def start(self, progress: Callable[[int], None] | None = None) -> Fleet:
        """Start every server (a few at a time: each start is three short processes). A signal
        here cancels the servers not started yet; the ones starting finish, then all stop."""
        def one(db: VtepDb) -> None:
            db.start()
            lifecycle.record(db.pid(), f"ovsdb-server {db.name}")
            if progress:
                progress(1)

        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(one, self.dbs))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = lifecycle.GRACE_S) -> None:
        """Signal every server first, then wait for each: 100 servers stop in well under a second;
        one that has not after ``grace`` is killed."""
        pids = [(db, pid) for db in self.dbs if (pid := db.running_pid()) is not None]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for _db, pid in pids:
                if lifecycle.alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
            deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 2.0)
            while time.monotonic() < deadline and any(lifecycle.alive(pid) for _db, pid in pids):
                time.sleep(0.02)
        for db in self.dbs:
            db.pidfile.unlink(missing_ok=True)

    def gateways(self, capacity: int = 8192) -> list[dict]:
        """The gateways as API bodies."""
        return [{"name": db.name, "vtep_ip": db.tunnel_ip, "capacity": capacity,
                 "management": {"driver": "ovsdb", "address": db.remote},
                 "ports": [{"name": p} for p in db.ports]} for db in self.dbs]


def ok(r: httpx.Response) -> Any:
    """The answer's JSON; an error status raises with the request and the answer's start."""
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r.json() if r.content else None


def wait_realized(http: httpx.Client, timeout: float = 60) -> None:
    """Until every gateway realized what it should have."""
    deadline = time.monotonic() + timeout
    rows: Any = None
    while time.monotonic() < deadline:
        rows = ok(http.get("/v1/status"))
        if rows and all(r["realized_generation"] >= r["desired_generation"] for r in rows):
            return
        time.sleep(0.05)
    raise RuntimeError(f"gateways not realized within {timeout:.0f} s: {rows}")


class PortTaken(Exception):
    """Another process bound the port between choosing it and the server binding it."""


class Server:
    """``silonet serve`` as its own process (its CPU is what ``idle_cpu_pct`` measures)."""

    def __init__(self, workdir: Path, period: float = 10.0, reconcile: bool = True,
                 database_url: str | None = None) -> None:
        self.dir = workdir
        self.period = period
        self.database_url = database_url  # None: a SQLite file of its own in ``workdir``
        self.reconcile = reconcile  # off: API only (a fuzzer's made-up gateways are never dialled)
        self.port, self.url = 0, ""
        self._new_port()
        self.pidfile = workdir / "server.pid"
        self.proc: subprocess.Popen | None = None
        self.token = new_secret()  # the server's SILONET_ADMIN_TOKEN
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.replica_id: str | None = None  # --replica-id: restarted under one name, it takes its leases back at once
        self.workers = 1  # --workers: reconcile processes behind the API
        self.attempts = 0  # processes started by the last ``start`` (more than one: its port was taken)

    def start(self, timeout: float = 60.0, attempts: int = 3, keep_db: bool = False,
              fresh_port: bool = False) -> Server:
        """Start on a free port; another process may take that port first, so try again then.
        ``keep_db``: on the database an earlier (perhaps killed) server left, as a restart does.
        ``fresh_port``: chosen now, not when this was made (listeners started since, a fleet of
        1,000 vtep servers, may hold the one chosen then: each try is a whole start of the serve)."""
        self.attempts = 0
        if fresh_port:
            self._new_port()
        for attempt in range(attempts):
            try:
                return self._start(timeout, keep_db)
            except PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(f"no free port for silonet serve after {attempts} tries") from None
                self._new_port()
        raise AssertionError("unreachable")

    def _new_port(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _start(self, timeout: float, keep_db: bool = False) -> Server:
        self.attempts += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in () if keep_db else self.dir.glob("silonet.db*"):
            old.unlink()
        env = {**os.environ, "SILONET_DATA_DIR": str(self.dir), "SILONET_ADMIN_TOKEN": self.token,
               "SILONET_DATABASE_URL": self.database_url or f"sqlite:///{self.dir / 'silonet.db'}"}
        log = open(self.dir / "server.log", "w")  # noqa: SIM115 (handed to the server process)
        with lifecycle.shielded():  # a signal waits until the pid is written down
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "silonet.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--period", str(self.period), "--reconcile" if self.reconcile else "--no-reconcile",
                 *(["--replica-id", self.replica_id] if self.replica_id else []),
             *(["--workers", str(self.workers)] if self.workers > 1 else [])],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self.pidfile.write_text(str(self.proc.pid))
            lifecycle.record(self.proc.pid, "silonet serve", group=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                if "address already in use" in (self.dir / "server.log").read_text():
                    raise PortTaken(self.port)
                raise RuntimeError(f"silonet serve exited with {self.proc.returncode}; see {self.dir / 'server.log'}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"silonet serve did not answer within {timeout:.0f} s; see {self.dir / 'server.log'}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server so far: its whole process tree (``--workers`` children)."""
        assert self.proc is not None
        return tree_cpu_s(self.proc.pid)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the server's process group (its own session, so a ``serve`` with worker
        processes stops whole; it never got the terminal's Ctrl-C), SIGKILL after ``grace``."""
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        if self.proc is not None and self.proc.pid == pid:
            if self.proc.poll() is None:  # not reaped: the pid (and its group) is still ours
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(pid, sig)
                        self.proc.wait(timeout=grace if sig == signal.SIGTERM else 5.0)
                        break
                    except ProcessLookupError:
                        break
                    except subprocess.TimeoutExpired:
                        continue
            self.proc.wait(timeout=5.0)
        elif lifecycle.alive(pid) and lifecycle.mentions(pid, self.dir):
            os.kill(pid, signal.SIGTERM)  # another run's server (its data dir is ours): by its pid file
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and lifecycle.alive(pid):
                time.sleep(0.05)
            if lifecycle.alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)


def clean(workdir: Path) -> None:
    """Stop whatever a previous run left in ``workdir`` (by its registry and pid files), then
    remove it."""
    if not workdir.exists():
        return
    lifecycle.sweep(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
