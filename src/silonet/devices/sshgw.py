"""A gateway with a ``vtep-ctl`` shell over real OpenSSH, on loopback: ``sshd`` whose sessions
run against one ``VtepDb``'s database (``SetEnv OVS_RUNDIR``), what the ``vtepctl`` dialect
expects of a switch. For tests that need a real SSH peer without building the lab's
namespaces (the driver conformance suite); the lab's gateways do the same in namespaces.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from silonet.devices.vtepdb import VtepDb, free_port

SSHD = "/usr/sbin/sshd"
PRIVSEP = Path("/run/sshd")  # Debian's sshd chroots its pre-auth child here
SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def available() -> str | None:
    """What is missing to run one (None: nothing)."""
    if not Path(SSHD).exists():
        return "sshd (openssh-server)"
    if os.geteuid() != 0:
        return "root (sshd switches to the session's user)"
    return None


def _keygen(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    path.chmod(0o600)


class SshGateway:
    """``root@127.0.0.1:<port>``, key authentication only; ``client_key`` goes in the secrets
    directory (credentials may point nowhere else), ``known_hosts`` lists the host key."""

    def __init__(self, workdir: Path, db: VtepDb, secrets: Path, port: int | None = None) -> None:
        self.dir, self.db, self.port = workdir, db, port or free_port()
        self.client_key = secrets / f"sshgw-{self.port}"
        self.host_key = workdir / "ssh_host_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.config = workdir / "sshd_config"
        self.pidfile = workdir / "sshd.pid"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"root@127.0.0.1:{self.port}"

    @property
    def credentials(self) -> str:
        return f"file:{self.client_key}"

    def start(self) -> SshGateway:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.client_key.parent.mkdir(parents=True, exist_ok=True)
        _keygen(self.host_key)
        _keygen(self.client_key)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(self.client_key.with_name(self.client_key.name + ".pub").read_text())
        authorized.chmod(0o600)
        host_pub = " ".join(self.host_key.with_name(self.host_key.name + ".pub").read_text().split()[:2])
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}", f'HostKey "{self.host_key}"', f'PidFile "{self.pidfile}"',
            f'AuthorizedKeysFile "{authorized}"', "AuthenticationMethods publickey", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
            "X11Forwarding no", "AllowTcpForwarding no", "AllowAgentForwarding no", "PrintMotd no",
            f'SetEnv "OVS_RUNDIR={self.db.dir}" "PATH={SESSION_PATH}" "SHLVL=1"',
        ]) + "\n")
        PRIVSEP.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(self.config), "-E", str(self.dir / "sshd.log")],
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.pidfile.exists():  # written once it listens
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "sshd.log").read_text() if (self.dir / "sshd.log").exists() else ""
                self.stop()
                raise RuntimeError(f"sshd on 127.0.0.1:{self.port} did not start: {log[-500:]}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self.pidfile.unlink(missing_ok=True)
        for key in (self.client_key, self.client_key.with_name(self.client_key.name + ".pub")):
            key.unlink(missing_ok=True)
