"""Two ``silonet serve`` replicas on one SQLite store and a real vtep ovsdb-server: replica A is
frozen (SIGSTOP) in the middle of a write, B takes the gateway over (A's lease expires) and
writes, A is resumed, and vtep-ctl, the independent reader, shows that the device refused A's
late write: it holds B's writes and B's lease epoch, not A's, and A logged the refusal.

A's write is made "in the middle" without any hook in the product: the gateway's management
address is a TCP relay in this test, in front of the ovsdb-server's unix socket. Once armed, the
relay holds what A's connection sends from the next ``transact`` on (A has sent its write and
waits for the answer); A is stopped right then, and the held bytes reach the server only after
B wrote. (A unix socket, because ovsdb-server probes no client there: a stopped A is not
disconnected for its silence.)
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from silonet.devices.vtepdb import VtepDb, free_port
from silonet.drivers.base import EPOCH_KEY
from tests.functional.conftest import MISSING

pytestmark = [pytest.mark.ovs, pytest.mark.slow]
GATEWAY = "gw-f"
REFUSAL = f"gateway {GATEWAY}: the device refused the write of replica fence-a: it holds lease epoch 2, newer " \
          "than this replica's 1"


def until(check: Callable[[], Any], what: str, timeout: float = 60.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(every)
    return got


class Relay:
    """TCP on loopback to a unix socket, one pair of pumps per connection. ``arm`` makes the
    connections open at that moment hold what they send from then on, and sets ``held`` once a
    ``transact`` is among it; ``release`` sends it on, in order. What the server answers those
    connections afterwards is kept in ``answers``."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs: dict[socket.socket, socket.socket] = {}  # client -> its connection to the server
        self.holding: dict[socket.socket, bytearray] = {}  # A's connections -> what they sent since arm()
        self.released: set[socket.socket] = set()
        self.answers = bytearray()
        self.held = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="relay").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX)
            server.connect(str(self.target))
            with self.lock:
                self.pairs[client] = server
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := _recv(client):
                with self.lock:  # under the lock: release() sends what was held first
                    if client in self.holding:
                        self.holding[client] += data
                        if b'"transact"' in self.holding[client]:
                            self.held.set()
                        continue
                    server.sendall(data)
        finally:
            with self.lock:  # a closed connection (the schema's, fetched first) is held no more
                self.pairs.pop(client, None)
                self.holding.pop(client, None)
            server.close()
            client.close()

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        while data := _recv(server):
            with self.lock:
                if client in self.released:
                    self.answers += data
            try:
                client.sendall(data)
            except OSError:
                return

    def arm(self) -> None:
        with self.lock:
            assert self.pairs, "no connection to hold"
            self.holding = {client: bytearray() for client in self.pairs}

    def release(self) -> bytes:
        """Send on what was held; returns it."""
        with self.lock:
            sent = b"".join(bytes(b) for b in self.holding.values())
            for client, data in self.holding.items():
                self.pairs[client].sendall(data)
            self.released = set(self.holding)
            self.holding = {}
        return sent

    def close(self) -> None:
        with self.lock:
            for s in [self.listener, *self.pairs, *self.pairs.values()]:
                s.close()


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


class Replica:
    """``silonet serve`` as a process of its own, on the shared store; stopped by its pid file."""

    def __init__(self, workdir: Path, name: str, database_url: str) -> None:
        self.dir, self.name, self.database_url = workdir, name, database_url
        self.port = free_port()
        self.pidfile = workdir / "serve.pid"
        self.log = workdir / "serve.log"
        self.token = f"fencing-test-admin-{os.urandom(8).hex()}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Replica:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SILONET_DATA_DIR": str(self.dir), "SILONET_ADMIN_TOKEN": self.token,
               "SILONET_DATABASE_URL": self.database_url}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "silonet.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--period", "2", "--replica-id", self.name], env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.pidfile.write_text(str(self.proc.pid))
        until(self._healthy, f"replica {self.name} answers", timeout=60)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"replica {self.name} exited: {self.log.read_text()[-2000:]}"
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stopped(self) -> bool:
        """Whether the process is in the stopped state (SIGSTOP took effect)."""
        return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"

    def stop(self) -> None:
        try:
            pid = int(self.pidfile.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
            if self.proc is not None:
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(pid, signal.SIGKILL)
                    self.proc.wait(5)
        except ProcessLookupError:
            pass
        self.pidfile.unlink(missing_ok=True)


def writing(store: Path) -> bool:
    """Whether some process holds the store's write lock (a replica stopped inside a write
    transaction would keep every other from writing)."""
    con = sqlite3.connect(store, timeout=0.2)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def bindings(db: VtepDb) -> list[str]:
    return db.ctl("list-bindings", GATEWAY, "p1").split()


def epoch(db: VtepDb) -> str:
    return db.ctl("get", "Physical_Switch", GATEWAY, f'other_config:"{EPOCH_KEY}"').strip().strip('"')


def test_a_replica_frozen_mid_write_is_refused_by_the_device_after_its_successor_wrote(tmp_path: Path) -> None:
    if MISSING:
        pytest.skip(f"Open vSwitch is not installed here (missing: {MISSING})")
    store = tmp_path / "store" / "silonet.db"
    url = f"sqlite:///{store}"
    db = VtepDb(tmp_path / "gw", name=GATEWAY, tunnel_ip="198.18.0.1").start()
    relay = Relay(db.sock)
    a = Replica(tmp_path / "a", "fence-a", url)
    b = Replica(tmp_path / "b", "fence-b", url)
    try:
        a.start()
        with a.http() as api:
            r = api.post("/v1/gateways", json={
                "name": GATEWAY, "vtep_ip": db.tunnel_ip, "ports": [{"name": "p1"}],
                "management": {"driver": "ovsdb", "address": f"tcp:127.0.0.1:{relay.port}"}})
            assert r.status_code == 201, r.text
            assert api.post("/v1/interface-groups", json={
                "name": "g", "members": [{"gateway": GATEWAY, "port": "p1"}]}).status_code == 201
            for i in (1, 2, 3):
                r = api.post("/v1/networks", json={"name": f"n{i}", "tenant": "acme", "vni": 5000 + i})
                assert r.status_code == 201, r.text
            r = api.post("/v1/networks/n1/attachments?wait=30", json={"interface_group": "g", "vlan": 100})
            assert r.status_code == 201 and r.json()["status"] == "realized", r.text
            assert bindings(db) == ["0100", "n1"] and epoch(db) == "1"  # A holds the lease at epoch 1

            relay.arm()  # A's next write stays in the network, as if A stopped before it left
            r = api.post("/v1/networks/n2/attachments", json={"interface_group": "g", "vlan": 101})
            assert r.status_code == 201, r.text
        until(relay.held.is_set, "A sent its write of n2", timeout=30)
        for _ in range(50):  # bounded: stop A, but never inside a write transaction of the store
            os.kill(a.pid, signal.SIGSTOP)
            until(a.stopped, "A stopped", timeout=5, every=0.005)
            if not writing(store):
                break
            os.kill(a.pid, signal.SIGCONT)
            time.sleep(0.02)
        else:
            pytest.fail("replica A was inside a write transaction at every stop")

        # meanwhile the intent moves on (the CLI on the store): n2 goes, n3 comes; then B starts,
        # takes the gateway over once A's lease expired (epoch 2) and realizes that intent
        for change in (["detach", "n2", "g", "101"], ["attach", "n3", "g", "102"]):
            done = subprocess.run([sys.executable, "-m", "silonet.cli.main", *change], capture_output=True, text=True,
                                  timeout=60, env={**os.environ, "SILONET_DATABASE_URL": url,
                                                   "SILONET_DATA_DIR": str(tmp_path / "cli")})
            assert done.returncode == 0, done.stdout + done.stderr
        b.start()
        with b.http() as api:
            until(lambda: bindings(db) == ["0100", "n1", "0102", "n3"] and epoch(db) == "2",
                  "B realized the intent under epoch 2")
            status = api.get(f"/v1/gateways/{GATEWAY}/status").json()
            assert status["owner"] == "fence-b", status

        # A wakes: its write reaches the device now, after B's. Its lease round is held back (the
        # store's write lock) until A has heard the device's answer, so that it cannot stop the
        # worker first: what A says is what the device did.
        lock = sqlite3.connect(store, timeout=20)
        try:
            lock.execute("BEGIN IMMEDIATE")
            late = relay.release()
            os.kill(a.pid, signal.SIGCONT)
            until(lambda: REFUSAL in a.log.read_text(), "A logged the device's refusal", timeout=30)
        finally:
            lock.rollback()
            lock.close()
        assert b'"transact"' in late and b"101" in late  # A's write of n2 (VLAN 101) went to the device
        until(lambda: b'"timed out"' in relay.answers, "the device's answer to A: its wait failed", timeout=10)

        assert bindings(db) == ["0100", "n1", "0102", "n3"]  # B's writes; nothing of A's late one
        assert epoch(db) == "2"
        assert db.ctl("list-ls").split() == ["n1", "n3"]  # n2's switch: made by A's late write only
        assert "(replica fence-b" in b.log.read_text() and "fence-a" not in b.log.read_text()
    finally:
        a.stop()
        b.stop()
        relay.close()
        db.stop()
