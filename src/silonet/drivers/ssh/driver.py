"""The ``ssh`` driver: one persistent SSH connection per gateway (asyncssh), reconnecting
with backoff; every reconcile pass is one batch inside the dialect's config session.

Host keys: a gateway's ``management.host_key`` (a public key line or a ``SHA256:`` fingerprint,
``hostkey.py``) is the only truth for it when set. Else they are checked against a known_hosts
file the operator manages (``SILONET_SSH_KNOWN_HOSTS``, default ``<data dir>/known_hosts``);
trust on first use only when the gateway enables it, and then the key is recorded there.

A failed connection attempt is ``hard`` (``Health.hard``) when retrying cannot mend it: the
host key, the credentials, a refused connection, a missing known_hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncssh

from silonet.config import data_dir
from silonet.drivers.base import ActualState, ApplyResult, Driver, Fence, Health
from silonet.drivers.ssh import credentials
from silonet.drivers.ssh.dialect import (
    FENCE,
    Dialect,
    Parsed,
    Target,
    device_facts,
    get,
    render_abort,
    render_batch,
)
from silonet.drivers.ssh.hostkey import HostKeyPin
from silonet.drivers.untrusted import FAULTS, check_read, echo, ipv4, shown
from silonet.errors import DeviceError
from silonet.model import Gateway
from silonet.plan import apply_ops
from silonet.plan.ops import Operation
from silonet.plan.state import GatewayState

log = logging.getLogger("silonet.ssh")
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
BACKOFF_MAX_S = 30.0
# what a parser may raise on a device's answer it cannot read (odd JSON shapes included): the
# gateway's error naming the command, never an internal error
PARSE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError)
ADDRESS_RE = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/:]+)@)?(?P<host>[^:/@]+)(?::(?P<port>\d+))?/?$")


class _Raced(DeviceError):
    """A refusal the dialect names in ``Dialect.raced``: another writer on the switch may have
    changed what the batch was built on (``apply`` reads again to know); never leaves the driver."""


def _refusal(text: str, failures: tuple[str, ...]) -> str | None:
    """The device's own words for a refusal: the failing line and the two after it."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    for i, line in enumerate(lines):
        if any(f in line for f in failures):
            return echo(" / ".join(lines[i:i + 3]))  # the device's words, bounded and escaped
    return None


def _hard(err: Exception) -> bool:
    """Whether a failed connection attempt will fail the same way until someone acts: a setting of
    ours (DeviceError: credentials, known_hosts, the pinned key), the host key, the credentials
    refused, or nothing listening. Timeouts, resets and unreachable networks may pass by themselves."""
    return isinstance(err, DeviceError | ValueError | ConnectionRefusedError | asyncssh.HostKeyNotVerifiable
                      | asyncssh.PermissionDenied | asyncssh.KeyExchangeFailed)


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
        self.fences = self.dialect.template(FENCE) is not None  # the dialect says why not (``unfenced``)
        self.epoch: int | None = None  # the lease epoch the device held at the last read (fencing dialects)
        self.target = Target(gateway.name, gateway.vtep_ip, tuple(p.name for p in gateway.ports),
                             tuple(p.name for p in gateway.ports if p.switchback))
        self.user, self.host, self.port = parse_address(gateway.management.address)
        self.conn: asyncssh.SSHClientConnection | None = None
        self.shell: asyncssh.SSHClientProcess | None = None
        self.error = "connecting"
        self.hard = False  # the last attempt failed in a way retrying will not mend
        self.last: ActualState | None = None
        self.outputs: dict[str, str] = {}  # the last read's raw answers, by command (``silonet gateway probe --save``)
        self._platform_of: asyncssh.SSHClientConnection | None = None  # the connection the platform was read on
        self.generation = int(time.time())  # session names stay unique across manager restarts
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------ connection
    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name=f"ssh {self.gateway.name}")

    def health(self) -> Health:
        up = self.conn is not None
        return Health(connected=up, detail="" if up else self.error, hard=not up and self.hard)

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
        pinned = self.gateway.management.host_key
        if pinned:  # the inventory's key is the only truth: no known_hosts, no trust on first use
            pin = HostKeyPin(self.gateway.name, pinned)
            try:
                return await asyncssh.connect(self.host, self.port, **options, **pin.options())
            except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as err:
                raise pin.refused(err) from None
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
                error, hard = f"ssh {self.host}:{self.port}: {why}", _hard(err)
                changed = hard and (error, hard) != (self.error, self.hard)
                self.error, self.hard = error, hard
                if changed:
                    self.on_change()  # its worker shows it now, not after the first connection's grace
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = 0.5
            self.conn, self.error, self.hard = conn, "", False
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
            if script and _refusal(err_text + "\n" + out, self.dialect.raced) is not None:
                raise _Raced(gateway=self.gateway.name, reason=f"device refused: {why}")
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
    async def _ask(self, cmd: str) -> str:
        """One show command's answer (never a write); a failure names the command."""
        try:
            return await self._exec(cmd) if self.dialect.style == "exec" else (await self._shell([cmd]))[0]
        except DeviceError as err:
            raise self._fail(f"{cmd!r}: {err.fields.get('reason', err)}") from None

    async def _platform(self) -> None:
        """What the device says it is, asked once per connection (a reconnect may find an upgraded
        switch): parsers and ``prepare`` choose syntax by ``Target.platform``."""
        d = self.dialect
        if d.version_show is None or d.version is None or (self._platform_of is self.conn and self.conn):
            return
        answer = await self._ask(d.version_show)
        self.outputs[d.version_show] = answer
        try:
            found = d.version(answer)
        except PARSE_ERRORS as err:
            raise self._fail(f"cannot tell the platform version from {d.version_show!r}: {err}") from None
        self.target = replace(self.target, platform=found)
        if d.unsupported is not None and (why := d.unsupported(found)) is not None:
            raise self._fail(f"{d.name} dialect: {why}")  # asked again next time: it may be upgraded
        self._platform_of = self.conn

    async def read(self) -> ActualState:
        async with self._lock:
            return await self._read()

    async def _read(self) -> ActualState:
        """``read`` with the lock held."""
        self.outputs = {k: v for k, v in self.outputs.items() if k == self.dialect.version_show}
        await self._platform()
        outputs = {}
        for cmd in self.dialect.show:
            outputs[cmd] = await self._ask(cmd)
        self.outputs.update(outputs)
        try:
            parsed = self.dialect.parse(outputs, self.target)
        except PARSE_ERRORS as err:
            asked = ", ".join(repr(cmd) for cmd in self.dialect.show)
            raise self._fail(f"cannot parse the answers to {asked}: {err}") from None
        self.last = interpret(self.dialect, self.target, parsed)
        self.epoch = parsed.epoch
        return self.last

    def preview(self, ops: list[Operation]) -> list[str]:
        """The lines ``apply(ops)`` would send after the last read, sending nothing (``silonet gateway
        probe``: what silonet would type on the switch); a batch the dialect refuses raises as apply would."""
        actual = self.last.owned if self.last else GatewayState()
        facts = self.last.facts if self.last else None
        desired = apply_ops(actual, ops)
        if not ops or not render_batch(self.dialect, ops, self.target, actual, desired, framed=False, facts=facts):
            return []  # apply sends nothing then, not even the framing
        return render_batch(self.dialect, ops, self.target, actual, desired, self.generation + 1, facts=facts)

    async def apply(self, ops: list[Operation], fence: Fence | None = None) -> ApplyResult:
        if not ops:
            return ApplyResult(0)
        fence = fence if self.fences else None  # a dialect that cannot fence: the lease's clock alone
        async with self._lock:
            await self._platform()  # a reconnect since the read may have found another release
            built_on = self.last
            actual = built_on.owned if built_on else GatewayState()
            if fence is not None:
                fence.check(self.gateway.name, self.epoch)  # a successor's epoch already read: send nothing
            self.generation += 1
            facts = self.last.facts if self.last else None
            lines = render_batch(self.dialect, ops, self.target, actual, apply_ops(actual, ops), self.generation,
                                 facts=facts, fence=fence, held=self.epoch)
            if not render_batch(self.dialect, ops, self.target, actual, apply_ops(actual, ops), self.generation,
                                framed=False, facts=facts):
                return ApplyResult(len(ops))  # nothing this platform needs to be told
            try:
                if self.dialect.style == "exec":
                    await self._exec(self.dialect.join.join(lines), script=True)
                else:
                    await self._shell(lines, abort=render_abort(self.dialect, self.target, self.generation))
            except DeviceError as err:
                if fence is not None:
                    await self._refused(fence)
                if isinstance(err, _Raced) and await self._moved(built_on):
                    log.info("%s (the switch changed since the batch's read: planning again)", err)
                    return ApplyResult(0, retry=True)
                if isinstance(err, _Raced):  # the refusal stands: an ordinary DeviceError
                    raise DeviceError(gateway=self.gateway.name, reason=err.fields["reason"]) from None
                raise
            if fence is not None:
                self.epoch = max(fence.epoch, self.epoch or 0)
            return ApplyResult(len(ops))

    async def _moved(self, built_on: ActualState | None) -> bool:
        """Whether the switch now reads otherwise than the read a refused batch was built on (a MAC
        learned on a network it deleted): then the refusal was a race, and a new plan may pass;
        the same reading means the refusal stands (a reference silonet does not manage)."""
        try:
            now = await self._read()
        except (DeviceError, *PARSE_ERRORS):
            return False
        return built_on is None or (now.owned, now.facts, now.local_macs) != (
            built_on.owned, built_on.facts, built_on.local_macs)

    async def _refused(self, fence: Fence) -> None:
        """A fenced batch failed: when the device now holds a higher epoch, that was the device's
        refusal (``Fenced``), not a fault (read again to know; the lock is held)."""
        with contextlib.suppress(DeviceError, *PARSE_ERRORS):  # unreadable: the batch's own failure stands
            outputs = {cmd: await self._ask(cmd) for cmd in self.dialect.show}
            self.epoch = self.dialect.parse(outputs, self.target).epoch
        fence.check(self.gateway.name, self.epoch)


def interpret(dialect: Dialect, target: Target, parsed: Parsed) -> ActualState:
    """What a parser's reading means, for every dialect alike: each value checked where it was read
    (a bad one is a fault, never used), the dialect's ``check`` laid into the facts (``restrict``
    leaves out what it refuses), the device's tunnel source compared with the inventory's. The SSH
    driver and the parser tests on captured output (tests/drivers/ssh/corpus) both go through here."""
    d = dialect
    owned, facts, local, bad = check_read(parsed.owned, parsed.facts, parsed.local_macs,
                                          f"{d.name} show output", unnamed_ok=d.unnamed)
    faults = dict(parsed.faults)
    if bad:
        faults[FAULTS] = sorted({*faults.get(FAULTS, ()), *bad})
    vtep_ip = None
    if parsed.vtep_ip is not None:
        vtep_ip = ipv4(parsed.vtep_ip)
        if vtep_ip is None:
            faults[FAULTS] = sorted({*faults.get(FAULTS, ()),
                                     f"{d.name} show output: VTEP source {shown(parsed.vtep_ip)} is not an IPv4 "
                                     "address; ignored"})
        elif target.vtep_ip and target.vtep_ip in {ipv4(a) for a in parsed.vtep_also}:
            vtep_ip = target.vtep_ip  # the anycast address of a pair, beside the member's own
        elif target.vtep_ip and vtep_ip != target.vtep_ip:
            faults["switch"] = [*faults.get("switch", ()), f"the device's VTEP source address is {vtep_ip}, the "
                                                           f"inventory says {target.vtep_ip}"]
    facts = device_facts(d, facts)
    if not d.flood_lists:  # the platform builds them itself (EVPN): not ours to compare
        owned = replace(owned, logical_switches={v: ls._replace(flood=frozenset())
                                                 for v, ls in owned.logical_switches.items()})
    return ActualState(owned, facts, local, faults, platform=target.platform, vtep_ip=vtep_ip)


class Unsupported(ValueError):
    """A platform the dialect cannot serve (``Dialect.unsupported``), found in captured answers."""


def replay(dialect: Dialect, target: Target, outputs: Mapping[str, str]) -> ActualState:
    """What the driver makes of answers captured earlier (``silonet gateway probe --save``, the parser
    tests' corpus): the platform from the version command's answer when there is one, then the
    parser, then ``interpret``. ValueError/KeyError when they do not parse."""
    if dialect.version_show is not None and dialect.version is not None and dialect.version_show in outputs:
        target = replace(target, platform=dialect.version(outputs[dialect.version_show]))
        if dialect.unsupported is not None and (why := dialect.unsupported(target.platform)) is not None:
            raise Unsupported(f"{dialect.name} dialect: {why}")  # the driver stops there, before any show command
    return interpret(dialect, target, dialect.parse({cmd: outputs[cmd] for cmd in dialect.show}, target))


DRIVER = SshDriver
