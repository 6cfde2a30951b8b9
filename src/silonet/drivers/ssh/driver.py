"""The ``ssh`` driver: one persistent SSH connection per gateway (asyncssh), reconnecting
with backoff; every reconcile pass is one batch inside the dialect's config session.

Host keys are checked against a known_hosts file the operator manages
(``SILONET_SSH_KNOWN_HOSTS``, default ``<data dir>/known_hosts``); trust on first use only
when the gateway enables it, and then the key is recorded there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh

from silonet.config import data_dir
from silonet.drivers.base import ActualState, ApplyResult, Driver, Health
from silonet.drivers.ssh import credentials
from silonet.drivers.ssh.dialect import Dialect, Target, device_facts, get, render_abort, render_batch
from silonet.drivers.untrusted import FAULTS, check_read, echo
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.plan import apply_ops
from silonet.plan.ops import Operation
from silonet.plan.state import GatewayState

log = logging.getLogger("silonet.ssh")
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
BACKOFF_MAX_S = 30.0
ADDRESS_RE = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/:]+)@)?(?P<host>[^:/@]+)(?::(?P<port>\d+))?/?$")


def _refusal(text: str, failures: tuple[str, ...]) -> str | None:
    """The device's own words for a refusal: the failing line and the two after it."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    for i, line in enumerate(lines):
        if any(f in line for f in failures):
            return echo(" / ".join(lines[i:i + 3]))  # the device's words, bounded and escaped
    return None


def known_hosts_path() -> Path:
    return Path(os.environ.get("SILONET_SSH_KNOWN_HOSTS") or data_dir() / "known_hosts")


def parse_address(address: str) -> tuple[str | None, str, int]:
    m = ADDRESS_RE.match(address)
    if not m:
        raise DeviceError(gateway="?", reason=f"ssh address {address!r} is not [user@]host[:port]")
    return m["user"], m["host"], int(m["port"] or 22)


class SshDriver(Driver):
    name = "ssh"

    def __init__(self, gateway: Gateway, on_change: Callable[[], None]) -> None:
        super().__init__(gateway, on_change)
        self.dialect: Dialect = get(gateway.management.dialect)
        self.target = Target(gateway.name, gateway.vtep_ip, tuple(p.name for p in gateway.ports),
                             tuple(p.name for p in gateway.ports if p.switchback))
        self.user, self.host, self.port = parse_address(gateway.management.address)
        self.conn: asyncssh.SSHClientConnection | None = None
        self.shell: asyncssh.SSHClientProcess | None = None
        self.error = "connecting"
        self.last: ActualState | None = None
        self.generation = int(time.time())  # session names stay unique across manager restarts
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ connection
    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name=f"ssh {self.gateway.name}")

    def health(self) -> Health:
        up = self.conn is not None
        return Health(connected=up, detail="" if up else self.error)

    async def _connect(self) -> asyncssh.SSHClientConnection:
        secret = credentials.resolve(self.gateway.management.credentials, self.gateway.name)
        known = known_hosts_path()
        options: dict[str, Any] = {
            "username": self.user or os.environ.get("USER", "root"),
            "connect_timeout": CONNECT_TIMEOUT_S,
            "keepalive_interval": 15,
            # asyncssh: client_keys=None offers no key at all, while [] or () would load the service
            # user's ~/.ssh/id_*; no agent, and no ~/.ssh/config (its IdentityFile, PKCS11Provider or
            # host-based signing): a gateway gets the key its reference names, or none.
            "client_keys": [secret.key] if secret.key is not None else None,
            "password": secret.password,
            "agent_path": None,
            "config": None,
        }
        tofu = self.gateway.management.trust_on_first_use
        if known.exists() and (not tofu or self._listed(known)):
            options["known_hosts"] = str(known)  # a listed host must match: a changed key is refused
            return await asyncssh.connect(self.host, self.port, **options)
        if not tofu:
            raise DeviceError(gateway=self.gateway.name, reason=f"no known_hosts file at {known}; add the gateway's "
                                                                "host key there (or enable trust on first use)")
        conn = await asyncssh.connect(self.host, self.port, **{**options, "known_hosts": None})
        key = conn.get_server_host_key()
        if key is not None:
            entry = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            known.parent.mkdir(parents=True, exist_ok=True)
            with known.open("a") as f:
                f.write(f"{entry} {key.export_public_key().decode().strip()}\n")
            log.warning("gateway %s: trusted host key of %s on first use", self.gateway.name, entry)
        return conn

    def _listed(self, known: Path) -> bool:
        """Whether known_hosts has any key for this host (then trust on first use is over)."""
        keys = asyncssh.read_known_hosts(str(known)).match(self.host, "", self.port)
        return any(keys[:3])

    async def _keep_connected(self) -> None:
        backoff = 0.5
        while True:
            try:
                conn = await self._connect()
            except Exception as err:  # each is this gateway's error: an escaped one left it "connecting" forever
                if not isinstance(err, OSError | asyncssh.Error | DeviceError | ValueError):  # ValueError: a bad key
                    log.exception("gateway %s: connecting failed", self.gateway.name)
                why = getattr(err, "reason", None) or str(err) or type(err).__name__  # TimeoutError() says ""
                self.error = f"ssh {self.host}:{self.port}: {why}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = 0.5
            self.conn, self.error = conn, ""
            self.on_change()
            await conn.wait_closed()
            self.conn, self.shell = None, None
            self.error = f"ssh {self.host}:{self.port}: connection lost"
            self.on_change()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=10)
        if self.conn is not None:
            self.conn.close()
            with contextlib.suppress(Exception):
                await self.conn.wait_closed()
        self.conn = None

    # ------------------------------------------------------------ commands
    def _fail(self, reason: str) -> DeviceError:
        return DeviceError(gateway=self.gateway.name, reason=reason)

    async def _exec(self, command: str, script: bool = False) -> str:
        """One remote command. A batch (``script``) goes to ``sh -s`` on stdin: a single
        argument may not exceed 128 KiB on Linux, a first sync of 4,094 VLANs does. Show
        output is judged by the exit status only (a description may contain 'Error:')."""
        conn = self.conn
        if conn is None:
            raise self._fail(self.error or "not connected")
        timeout = COMMAND_TIMEOUT_S + 0.05 * command.count("\n")
        try:
            run = conn.run("sh -s", input=command + "\n", check=False) if script else conn.run(command, check=False)
            async with asyncio.timeout(timeout):
                result = await run
        except (OSError, asyncssh.Error, TimeoutError) as err:
            raise self._fail(f"ssh command failed: {err or type(err).__name__}") from None
        out, err_text = str(result.stdout or ""), str(result.stderr or "")
        refused = _refusal(err_text + "\n" + out, self.dialect.failures) if script else None
        if result.exit_status != 0 or refused is not None:
            why = refused or echo((err_text or out).strip().rsplit("\n", 1)[-1]) or f"exit status {result.exit_status}"
            raise self._fail(f"device refused: {why}")
        return out

    async def _open_shell(self) -> asyncssh.SSHClientProcess:
        if self.conn is None:
            raise self._fail(self.error or "not connected")
        if self.shell is None:
            try:
                self.shell = await self.conn.create_process(term_type="vt100", term_size=(512, 10000))
                await self._until_prompt()
                for line in self.dialect.setup:
                    if (refused := _refusal(await self._send(line), self.dialect.failures)) is not None:
                        raise self._fail(f"device refused session setup {line!r}: {refused}")
            except BaseException:
                self.shell = None
                raise
        return self.shell

    async def _send(self, line: str) -> str:
        """One line; the device's answer without the echo and without the next prompt."""
        assert self.shell is not None
        try:
            self.shell.stdin.write(line + "\n")
        except (OSError, asyncssh.Error) as err:
            self.shell = None
            raise self._fail(f"the CLI session closed: {err}") from None
        raw = (await self._until_prompt()).replace("\r", "")
        lines = raw.split("\n")
        if lines and lines[0].strip() == line.strip():
            lines = lines[1:]  # the echo
        return "\n".join(lines[:-1])  # the last line is the prompt

    async def _shell(self, lines: list[str], abort: list[str] | None = None) -> list[str]:
        """Type ``lines`` into the interactive CLI; each answer is checked for failures."""
        await self._open_shell()
        answers = []
        for line in lines:
            answer = await self._send(line)
            refused = _refusal(answer, self.dialect.failures)
            if refused is not None:
                for a in abort or ():
                    try:
                        await self._send(a)
                    except DeviceError as err:
                        log.warning("gateway %s: abort line %r failed: %s", self.gateway.name, a, err)
                raise self._fail(f"device refused {line.strip()!r}: {refused}")
            answers.append(answer)
        return answers

    async def _until_prompt(self) -> str:
        assert self.shell is not None
        prompt = re.compile(self.dialect.prompt)
        buf = ""
        while not prompt.search(buf.replace("\r", "").rstrip("\n").rsplit("\n", 1)[-1] if buf.strip() else ""):
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    chunk = await self.shell.stdout.read(65536)
            except TimeoutError:
                self.shell = None
                raise self._fail(f"no prompt after {COMMAND_TIMEOUT_S:.0f} s") from None
            except (OSError, asyncssh.Error) as err:
                self.shell = None
                raise self._fail(f"the CLI session closed: {err}") from None
            if not chunk:
                self.shell = None
                raise self._fail("the CLI session closed")
            buf += chunk
        return buf

    # ------------------------------------------------------------ interface
    async def read(self) -> ActualState:
        async with self._lock:
            outputs = {}
            for cmd in self.dialect.show:
                if self.dialect.style == "exec":
                    outputs[cmd] = await self._exec(cmd)
                else:
                    outputs[cmd] = (await self._shell([cmd]))[0]
            try:
                parsed = self.dialect.parse(outputs, self.target)
            except (ValueError, KeyError) as err:
                raise self._fail(f"cannot parse the show output: {err}") from None
            d = self.dialect
            # what a parser read is checked here, once for every dialect: a bad value is a fault
            owned, facts, local, bad = check_read(parsed.owned, parsed.facts, parsed.local_macs,
                                                  f"{d.name} show output", unnamed_ok=d.unnamed)
            faults = parsed.faults
            if bad:
                faults = {**faults, FAULTS: sorted({*faults.get(FAULTS, ()), *bad})}
            facts = device_facts(d, facts)  # with the dialect's check: restrict leaves out what it refuses
            if not d.flood_lists:  # the platform builds them itself (EVPN): not ours to compare
                owned = replace(owned, logical_switches={v: ls._replace(flood=frozenset())
                                                         for v, ls in owned.logical_switches.items()})
            self.last = ActualState(owned, facts, local, faults)
            return self.last

    async def apply(self, ops: list[Operation]) -> ApplyResult:
        if not ops:
            return ApplyResult(0)
        async with self._lock:
            actual = self.last.owned if self.last else GatewayState()
            self.generation += 1
            lines = render_batch(self.dialect, ops, self.target, actual, apply_ops(actual, ops), self.generation)
            if not render_batch(self.dialect, ops, self.target, actual, apply_ops(actual, ops), self.generation,
                                framed=False):
                return ApplyResult(len(ops))  # nothing this platform needs to be told
            if self.dialect.style == "exec":
                await self._exec(self.dialect.join.join(lines), script=True)
            else:
                await self._shell(lines, abort=render_abort(self.dialect, self.target, self.generation))
            return ApplyResult(len(ops))


DRIVER = SshDriver
