"""A fake vendor CLI behind a real SSH server (asyncssh), for protocol tests of SSH dialects.

Only on 127.0.0.1, on an ephemeral port, with a host key generated per server and key
authentication with a client key generated per server; ``known_hosts`` is written for it.

API (keep it small; other dialect tests use it too)::

    cli = FakeCli(folder,                       # where the keys and known_hosts go
                  prompt="gw-a#",               # the prompt after login
                  modes=[(r"^configure session (\\S+)$", "gw-a(config-s-{1})#"),
                         (r"^(commit|abort|end)$", "gw-a#")],  # line regex -> next prompt
                  show={"show vlan | json": "{...}"},          # canned answers, by exact line
                  fail={"bad line": "% Invalid input"},        # failure answers, by exact line
                  exec_answers={"vtep-ctl ...": "..."})        # exec-style commands -> stdout
    async with cli:                             # starts the server, stops it on exit
        cli.address       # "admin@127.0.0.1:<port>", for management.address
        cli.client_key    # Path of the client's private key (0600), for "file:<path>" credentials
        cli.known_hosts   # Path of a known_hosts file that trusts this server's host key
        cli.lines         # every line a shell session received, in order
        cli.execs         # every exec-style command received, in order

Shell sessions: after login the server writes ``banner`` and the prompt; for each line it
records it, answers ``show[line]`` or ``fail[line]`` (or nothing), then a newline and the
prompt, which the first matching ``modes`` regex may have changed (``{1}``.. are its groups).
With a pty, asyncssh's line editor echoes what the client types, as a real CLI does.
Exec sessions: a command in ``fail`` answers on stderr with exit status 1; otherwise
``exec_answers.get(command, "")`` on stdout with exit status 0.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import asyncssh

HOST = "127.0.0.1"
USER = "admin"


class FakeCli:
    def __init__(self, folder: Path, *, prompt: str = "gw-a#", modes: Sequence[tuple[str, str]] = (),
                 show: Mapping[str, str] | None = None, fail: Mapping[str, str] | None = None,
                 exec_answers: Mapping[str, str] | None = None, banner: str = "") -> None:
        self.folder = Path(folder)
        self.initial_prompt = prompt
        self.modes = [(re.compile(rx), template) for rx, template in modes]
        self.show = dict(show or {})
        self.fail = dict(fail or {})
        self.exec_answers = dict(exec_answers or {})
        self.banner = banner
        self.lines: list[str] = []
        self.execs: list[str] = []
        self.sessions = 0
        self.port = 0
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._client = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = self.folder / "client_key"
        self.known_hosts = self.folder / "known_hosts"
        self._server: asyncssh.SSHAcceptor | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> FakeCli:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._client.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        authorized = asyncssh.import_authorized_keys(self._client.export_public_key().decode())
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer, HOST, 0, server_host_keys=[self.host_key], authorized_client_keys=authorized,
            process_factory=self._session, encoding="utf-8", keepalive_interval=0)
        self.port = self._server.sockets[0].getsockname()[1]
        self.known_hosts.write_text(f"{self.known_hosts_entry()}\n")
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeCli:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def address(self) -> str:
        return f"{USER}@{HOST}:{self.port}"

    def known_hosts_entry(self) -> str:
        return f"[{HOST}]:{self.port} {self.host_key.export_public_key().decode().strip()}"

    # ------------------------------------------------------------ sessions
    async def _session(self, process: asyncssh.SSHServerProcess) -> None:
        self.sessions += 1
        if process.command is not None:
            await self._exec(process, process.command)
            return
        with contextlib.suppress(asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, ConnectionError):
            await self._shell(process)
        process.exit(0)

    async def _exec(self, process: asyncssh.SSHServerProcess, command: str) -> None:
        if command == "sh -s":  # a batch arrives as a script on stdin: record the script itself
            command = (await process.stdin.read()).rstrip("\n")
        self.execs.append(command)
        if command in self.fail:
            process.stderr.write(self.fail[command] + "\n")
            process.exit(1)
            return
        process.stdout.write(self.exec_answers.get(command, ""))
        process.exit(0)

    async def _shell(self, process: asyncssh.SSHServerProcess) -> None:
        prompt = self.initial_prompt
        process.stdout.write((self.banner + "\n" if self.banner else "") + prompt)
        while True:
            raw = await process.stdin.readline()
            if not raw:
                return
            line = raw.rstrip("\r\n")
            self.lines.append(line)
            answer = self.fail.get(line, self.show.get(line, ""))
            for rx, template in self.modes:
                if m := rx.search(line):
                    prompt = template.format(m.group(0), *m.groups())
                    break
            process.stdout.write((answer.rstrip("\n") + "\n" if answer else "") + prompt)
