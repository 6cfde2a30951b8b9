"""A stand-alone ``ovsdb-server`` serving the hardware_vtep schema, without ovs-vtep.

The real OVSDB server with the real schema, for functional tests and control-plane
benchmarks where no data plane is needed. Stopped by its pid file, and only when /proc says
the pid is the ovsdb-server told to write that very file (a stale file's pid may be anyone's).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")


def available() -> str | None:
    """None when the binaries and schema are here, else what is missing."""
    missing = [b for b in ("ovsdb-server", "ovsdb-tool", "vtep-ctl") if shutil.which(b) is None]
    if not SCHEMA.exists():
        missing.append(str(SCHEMA))
    return ", ".join(missing) or None


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback (all held open while choosing)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


class VtepDb:
    """One ovsdb-server with a vtep database, a physical switch and its ports."""

    def __init__(self, workdir: Path, name: str = "ps1", tunnel_ip: str = "198.18.0.1",
                 ports: tuple[str, ...] = ("p1", "p2", "p48"), port: int | None = None,
                 ssl_dir: Path | None = None) -> None:
        self.dir = workdir
        self.name = name
        self.tunnel_ip = tunnel_ip
        self.ports = ports
        self.tcp_port = port or free_port()
        self.sock = workdir / "db.sock"
        self.pidfile = workdir / "ovsdb-server.pid"
        self.ssl_dir = ssl_dir  # key.pem, cert.pem, cacert.pem: serve pssl: instead of ptcp:

    @property
    def remote(self) -> str:
        return f"{'ssl' if self.ssl_dir else 'tcp'}:127.0.0.1:{self.tcp_port}"

    @property
    def unix(self) -> str:
        return f"unix:{self.sock}"

    def start(self, fresh: bool = True) -> VtepDb:
        self.dir.mkdir(parents=True, exist_ok=True)
        db = self.dir / "vtep.db"
        if fresh or not db.exists():
            db.unlink(missing_ok=True)
            subprocess.run(["ovsdb-tool", "create", str(db), str(SCHEMA)], check=True)
        listen = [f"--remote=ptcp:{self.tcp_port}:127.0.0.1"]
        if self.ssl_dir:
            listen = [f"--remote=pssl:{self.tcp_port}:127.0.0.1", f"--private-key={self.ssl_dir / 'key.pem'}",
                      f"--certificate={self.ssl_dir / 'cert.pem'}", f"--ca-cert={self.ssl_dir / 'cacert.pem'}"]
        subprocess.run(
            ["ovsdb-server", str(db), f"--remote=punix:{self.sock}", *listen,
             f"--pidfile={self.pidfile}", "--detach", f"--log-file={self.dir / 'ovsdb-server.log'}",
             f"--unixctl={self.dir / 'ovsdb-server.ctl'}"],
            check=True, capture_output=True,
            start_new_session=True,  # a terminal's Ctrl-C must not catch it half detached, before its pid file
        )
        if self.listening_failed():
            self.stop()
            raise RuntimeError(f"ovsdb-server in {self.dir} could not listen on 127.0.0.1:{self.tcp_port}: "
                               "the port is taken (see its log)")
        if fresh:
            args = ["add-ps", self.name, "--", "set", "Physical_Switch", self.name, f"tunnel_ips={self.tunnel_ip}"]
            for p in self.ports:
                args += ["--", "add-port", self.name, p]
            self.ctl(*args)
        return self

    def listening_failed(self) -> bool:
        """ovsdb-server keeps running when a remote cannot bind; its log says so."""
        try:
            text = (self.dir / "ovsdb-server.log").read_text()
        except OSError:
            return False
        return f"{self.tcp_port}" in text and ("listen failed" in text or "Address already in use" in text)

    def ctl(self, *args: str) -> str:
        """vtep-ctl against this database: the independent reader and writer for tests."""
        out = subprocess.run(["vtep-ctl", f"--db={self.unix}", "--timeout=10", *args], check=True,
                             capture_output=True, text=True)
        return out.stdout

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The pid file's pid when that process is alive and is this server (``--pidfile=`` it)."""
        pid = self.pid()
        if pid is None or not _alive(pid):
            return None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if f"--pidfile={self.pidfile}".encode() in args else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
        """``sig``, then SIGKILL if it is still there after ``timeout``."""
        pid = self.running_pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        for s, wait in ((sig, timeout), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                break
            self.wait_gone(pid, wait)
            if not _alive(pid):
                break
        self.pidfile.unlink(missing_ok=True)

    def wait_gone(self, pid: int, timeout: float = 5.0) -> None:
        """Until the process is gone. A daemon's parent is init, which may reap it late: a
        zombie (state Z) has exited and counts as gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        self.pidfile.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
