"""OpenSSH in the lab: keys, known_hosts and one ``sshd`` per gateway namespace.

With driver ``ssh`` or ``mixed`` every gateway answers on ``root@<mgmt ip>:22`` with key
authentication only, and a session there runs ``vtep-ctl`` against that gateway's own
database (``SetEnv OVS_RUNDIR=<gateway dir>``): what the ``ssh`` driver's ``vtepctl``
dialect expects of a switch with a vtep-ctl shell. The manager's client key ``id_ed25519``
(0600) / ``.pub`` (``management.credentials``) lives in ``<secrets dir>/lab-<prefix>`` (0700),
since credentials references may point only into the secrets directory; the rest under
``<lab dir>/ssh`` (mode 0700); ``down`` removes both:

- ``authorized_keys``: that public key, the only one any lab sshd accepts;
- ``ssh_host_<gateway>_ed25519``: one host key per gateway;
- ``known_hosts``: each gateway's management IP with its host key, for OpenSSH's client (or
  ``SILONET_SSH_KNOWN_HOSTS``: the manager needs it not, ``Lab.inventory`` gives every SSH gateway
  its ``management.host_key``).
"""

from __future__ import annotations

import os
from pathlib import Path

from silonet.lab.daemons import SSHD_BIN, ensure_privsep_dir, ovs_env, pidfile
from silonet.lab.errors import LabError
from silonet.lab.layout import SSH_PORT, GatewayLayout, LabLayout
from silonet.lab.netns import run

SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _keygen(path: Path, comment: str) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)


def public_key(path: Path) -> str:
    """``<type> <base64>`` of a key pair's public half (no comment)."""
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


def make_keys(layout: LabLayout) -> None:
    """The client key pair, authorized_keys, one host key per gateway and known_hosts."""
    layout.client_key.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the secrets dir, if new
    for d in (layout.ssh_dir, layout.client_key.parent):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
    _keygen(layout.client_key, f"silonet-lab-{layout.prefix}")
    _write(layout.authorized_keys, public_key(layout.client_key) + f" silonet-lab-{layout.prefix}\n")
    lines = []
    for gw in layout.gateways:
        _keygen(gw.host_key, f"silonet-lab-{layout.prefix}-{gw.name}")
        host = gw.mgmt_ip if SSH_PORT == 22 else f"[{gw.mgmt_ip}]:{SSH_PORT}"  # OpenSSH's known_hosts syntax
        lines.append(f"{host} {public_key(gw.host_key)}\n")
    _write(layout.known_hosts, "".join(lines))


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def _q(value: object) -> str:
    """One sshd_config argument, double-quoted (paths may hold spaces)."""
    text = str(value)
    if any(c in text for c in '"\n\r\\'):
        raise LabError(f"{text!r} cannot be written into an sshd_config (quote, backslash or newline in it); "
                       "pick another lab directory")
    return f'"{text}"'


def sshd_config(gw: GatewayLayout, authorized_keys: Path) -> str:
    """The gateway's sshd_config: its management IP only, public keys only, the lab's one key."""
    # SHLVL=1: bash run by sshd sources ~/.bashrc only as a top-level shell (SHLVL < 2 after its own
    # increment). The gateway's sessions then get this environment alone, not the lab host's root
    # profile (which may be slow, print, or take locks, e.g. pyenv's rehash, that a stopped sshd
    # would leave behind), like a switch's CLI account.
    env = {**ovs_env(gw), "PATH": SESSION_PATH, "SHLVL": "1"}
    lines = [
        f"# silonet lab: sshd of gateway {gw.name} (namespace {gw.netns}); written by `silonet lab up`",
        f"ListenAddress {gw.mgmt_ip}:{SSH_PORT}",
        "AddressFamily inet",
        f"HostKey {_q(gw.host_key)}",
        f"PidFile {_q(pidfile(gw, 'sshd'))}",
        f"AuthorizedKeysFile {_q(authorized_keys)}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "PermitRootLogin prohibit-password",
        # The lab directory may sit under a world-writable /tmp (pytest's tmp_path), which StrictModes'
        # ownership/mode walk up the authorized_keys path refuses; the ssh directory itself is 0700.
        "StrictModes no",
        "UsePAM no",
        "PermitUserEnvironment no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "AllowStreamLocalForwarding no",
        "AllowAgentForwarding no",
        "PermitTunnel no",
        "PrintMotd no",
        "ClientAliveInterval 15",
        "ClientAliveCountMax 3",
        "LogLevel VERBOSE",
        # vtep-ctl in a session finds this gateway's database: unix:$OVS_RUNDIR/db.sock
        "SetEnv " + " ".join(_q(f"{k}={v}") for k, v in env.items()),
    ]
    return "\n".join(lines) + "\n"


def write_sshd_config(gw: GatewayLayout, authorized_keys: Path) -> None:
    """Write it and have sshd check it (``sshd -t``), so a bad one fails here, with sshd's words."""
    gw.dir.mkdir(parents=True, exist_ok=True)
    _write(gw.sshd_config, sshd_config(gw, authorized_keys))
    ensure_privsep_dir()
    run([SSHD_BIN, "-t", "-f", str(gw.sshd_config)])
