"""Passwords, keys and tokens never show: not in the server's log, not in any API answer, not
in the audit log, not in the database file.

A real ``silonet serve`` (its reconciler on) manages SSH gateways whose management holds
credential references: ``env:SILONET_SECRET_*`` (a password in the server's environment) and
``file:<secrets dir>/key`` (a private key); references outside that fence (the server's own
variables, files elsewhere) are refused. A real SSH server (asyncssh, loopback only) checks what the
manager sends, so the secrets are proven to be read and used, then refuses the session, so
the drivers' error paths run too. The test then walks the API (creates, lists, gets,
status, plan, audit, tokens, errors of every kind) and greps everything it saw.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import asyncssh
import httpx
import pytest

from silonet.bench.fleet import Server
from silonet.devices.vtepdb import free_port

pytestmark = pytest.mark.slow

USER = "netops"
# One device is managed by one gateway, so each gateway of the test reaches the stand-in switch
# on its own loopback address (all of 127.0.0.0/8 is this machine's loopback).
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


@dataclass
class Seen:
    """What the SSH server received: proof that the manager resolved and sent each secret."""

    passwords: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class SshGateway:
    """An SSH server on loopback (``HOSTS``) that accepts one password and one public key, then refuses
    every session (the drivers then fail as they would on a broken switch)."""

    def __init__(self, password: str, client_key: asyncssh.SSHKey) -> None:
        self.password = password
        self.client_public = client_key.export_public_key().decode().split()[1]
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.port = free_port()
        self.seen = Seen()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ssh-gateway", daemon=True)
        self.server: asyncssh.SSHAcceptor | None = None

    def known_hosts_line(self) -> str:
        key = self.host_key.export_public_key().decode().strip()
        return "".join(f"[{host}]:{self.port} {key}\n" for host in HOSTS)

    def start(self) -> SshGateway:
        gateway = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                gateway.seen.passwords.append(password)
                return username == USER and password == gateway.password

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                offered = key.export_public_key().decode().split()[1]
                gateway.seen.keys.append(offered)
                return username == USER and offered == gateway.client_public

        async def listen() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(Auth, list(HOSTS), self.port, server_host_keys=[self.host_key])

        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class Run:
    server: Server
    http: httpx.Client
    gateway: SshGateway
    key_file: Path
    secrets: dict[str, str]  # what -> the secret string that must never show
    answers: list[tuple[str, str]] = field(default_factory=list)  # (request, body) of every answer

    def call(self, method: str, path: str, expect: int, **kw: object) -> httpx.Response:
        r = self.http.request(method, path, **kw)  # type: ignore[arg-type]
        self.answers.append((f"{method} {path}", r.text))
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r


def _gateways(port: int, key_file: Path) -> list[dict]:
    def gw(name: str, i: int, credentials: str) -> dict:
        return {"name": name, "vtep_ip": f"198.18.70.{i}", "capacity": 64,
                "management": {"driver": "ssh", "dialect": "vtepctl", "address": f"{USER}@{HOSTS[i - 1]}:{port}",
                               "credentials": credentials},
                "ports": [{"name": "p1"}]}

    return [gw("gw-pw", 1, "env:SILONET_SECRET_TEST_SWITCH_PASSWORD"),  # the right password
            gw("gw-key", 2, f"file:{key_file}"),  # the right key
            gw("gw-wrong", 3, "env:SILONET_SECRET_TEST_WRONG_PASSWORD"),  # refused: a wrong password
            gw("gw-unset", 4, "env:SILONET_SECRET_TEST_UNSET")]  # no such variable


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("secrets")
    password, wrong = "pw-" + secrets.token_urlsafe(18), "pw-" + secrets.token_urlsafe(18)
    client_key = asyncssh.generate_private_key("ssh-ed25519", comment="silonet-secrets-test")
    secrets_dir = base / "secrets"  # the server's SILONET_SECRETS_DIR: file: references point only here
    secrets_dir.mkdir(mode=0o700)
    key_file = secrets_dir / "id_ed25519"
    key_file.write_bytes(client_key.export_private_key())
    key_file.chmod(0o600)
    gateway = SshGateway(password, client_key).start()
    known = base / "known_hosts"
    known.write_text(gateway.known_hosts_line())
    env = {"SILONET_SECRET_TEST_SWITCH_PASSWORD": password, "SILONET_SECRET_TEST_WRONG_PASSWORD": wrong,
           "SILONET_SSH_KNOWN_HOSTS": str(known), "SILONET_SECRETS_DIR": str(secrets_dir)}
    server = Server(base / "server", period=1.0)
    try:
        with mock.patch.dict(os.environ, env):
            os.environ.pop("SILONET_SECRET_TEST_UNSET", None)
            server.start()
        pem = client_key.export_private_key().decode()
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        found = {"password": password, "wrong password": wrong, "admin token": server.token,
                 "private key": "".join(body)}
        found |= {f"private key line {i}": line for i, line in enumerate(body) if len(line) >= 16}
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
            yield Run(server, http, gateway, key_file, found)
    finally:
        server.stop()
        gateway.stop()


def _eventually(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(0.2)


def test_no_secret_anywhere(run: Run) -> None:
    gateways = _gateways(run.gateway.port, run.key_file)
    for gw in gateways:
        run.call("POST", "/v1/gateways", 201, json=gw)
    run.call("POST", "/v1/interface-groups", 201,
             json={"name": "g-pw", "members": [{"gateway": "gw-pw", "port": "p1"}]})
    run.call("POST", "/v1/interface-groups", 201,
             json={"name": "g-key", "members": [{"gateway": "gw-key", "port": "p1"}]})
    run.call("POST", "/v1/networks", 201, json={"name": "sec-net", "tenant": "acme", "vni": 7100})
    run.call("POST", "/v1/networks/sec-net/attachments?wait=2", 201, json={"interface_group": "g-pw", "vlan": 10})
    run.call("POST", "/v1/networks/sec-net/attachments", 201, json={"interface_group": "g-key", "vlan": 20})

    # the manager really read and sent both secrets (and the wrong one), and recorded the refusals
    seen = run.gateway.seen
    _eventually(lambda: run.secrets["password"] in seen.passwords and run.gateway.client_public in seen.keys
                and run.secrets["wrong password"] in seen.passwords, 30, "the SSH gateway seeing each secret")
    _eventually(lambda: all(run.http.get(f"/v1/gateways/{g['name']}/status").json()["last_error"]
                            for g in gateways), 30, "every gateway reporting its error")

    # read everything there is to read
    for collection in ("gateways", "interface-groups", "networks", "silos"):
        for item in run.call("GET", f"/v1/{collection}", 200).json():
            run.call("GET", f"/v1/{collection}/{item['name']}", 200)
    for gw in gateways:
        status = run.call("GET", f"/v1/gateways/{gw['name']}/status", 200).json()
        assert status["last_error"], status
    run.call("GET", "/v1/status", 200)
    run.call("GET", "/v1/plan", 200)
    run.call("GET", "/v1/plan?gateway=gw-pw", 200)
    run.call("GET", "/v1/attachments", 200)

    # tokens: a tenant token's secret is in its create answer only
    created = run.call("POST", "/v1/tokens", 201, json={"role": "tenant", "tenant": "acme", "description": "t"})
    tenant_token = created.json()["token"]
    run.answers.pop()  # the one answer that must hold it
    run.secrets["tenant token"] = tenant_token
    tenant = {"Authorization": f"Bearer {tenant_token}"}
    run.call("GET", "/v1/networks", 200, headers=tenant)
    run.call("GET", "/v1/tokens", 200)

    # errors, including a secret put where a reference belongs or sent as a token
    pw = run.secrets["password"]
    mgmt = {"driver": "ssh", "dialect": "vtepctl", "address": f"{USER}@127.0.0.1:{run.gateway.port}"}
    bad = {"name": "gw-bad", "vtep_ip": "198.18.70.9", "ports": [{"name": "p1"}]}
    run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "credentials": pw}})
    run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "credentials": pw * 20}})
    run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "password": pw}})
    run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "credentials": "env:" + pw}})
    for address in (f"{USER}:{pw}@127.0.0.1:{run.gateway.port}", f"ssh://{USER}:{pw}@127.0.0.1"):
        r = run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "address": address}})
        assert r.json()["field"] == "management.address", r.text
    # references outside the fence: the server's own variables, files outside the secrets directory (one that
    # exists, one that does not: the same answer)
    outside = ("env:SILONET_ADMIN_TOKEN", "env:SILONET_DATABASE_URL", "file:/etc/shadow", "/etc/no-such-file",
               f"file:{run.key_file.parent}/../known_hosts", f"file:{run.key_file.parent.parent / 'known_hosts'}")
    said = {}
    for ref in outside:
        r = run.call("POST", "/v1/gateways", 422, json={**bad, "management": {**mgmt, "credentials": ref}})
        assert r.json()["field"] == "management.credentials", r.text
        said[ref] = r.json()["message"]
    assert all("SILONET_SECRET_" in said[ref] for ref in outside[:2]), said
    assert len({said[ref] for ref in outside[2:]}) == 1 and "secrets directory" in said["file:/etc/shadow"], said
    assert run.secrets["admin token"] not in seen.passwords
    run.call("POST", "/v1/gateways", 409, json=gateways[0])
    run.call("GET", "/v1/gateways/nope", 404)
    run.call("DELETE", "/v1/gateways/gw-pw", 409)
    run.call("GET", "/v1/networks", 401, headers={"Authorization": f"Bearer {pw}"})
    run.call("GET", "/v1/networks", 401, headers={"Authorization": f"Bearer {run.secrets['admin token']}x"})
    run.call("GET", "/v1/tokens", 403, headers=tenant)
    run.call("DELETE", "/v1/gateways/gw-unset", 204)
    audit = run.call("GET", "/v1/audit?limit=1000", 200).json()
    assert any(e["object"] == "gateway/gw-pw" for e in audit), audit[:3]

    # grep it all: the answers, the audit log, the server's log, the database files
    run.server.stop()
    places = {f"answer {i} to {req}": body for i, (req, body) in enumerate(run.answers)}
    places["server log"] = (run.server.dir / "server.log").read_text(errors="replace")
    for db in run.server.dir.glob("silonet.db*"):
        places[db.name] = db.read_bytes().decode("latin-1")
    assert "gw-pw" in places["server log"] or "ssh" in places["server log"], "the server log is empty?"
    leaks = [f"{what} in {where}" for where, text in places.items() for what, s in run.secrets.items() if s in text]
    assert not leaks, leaks
    assert len(run.answers) >= 30, len(run.answers)
