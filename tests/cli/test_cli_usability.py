"""What a new operator reads: help for every command and option, numbers typed as numbers,
tables that keep their text in a pipe, a note when a read lands on an empty local store, CLI
flags (not API parameters) in errors, and a question before a token for a tenant that owns
nothing. The real `silonet` command in a subprocess, except where the Typer app is inspected."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from silonet.cli import main as cli
from tests.support.cli import silonet as run


def silonet(datadir: Path, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return run(datadir, *args, config=datadir.parent / "cli-config.json", **options)


def _commands(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], typer.core.TyperGroup | typer.core.TyperCommand]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_and_parameter_has_help() -> None:
    missing = []
    commands = list(_commands(typer.main.get_command(cli.app)))
    assert len(commands) > 40
    for path, command in commands:
        if not (command.help or command.short_help):
            missing.append(f"silonet {' '.join(path)}")
        for param in command.params:
            if param.name != "help" and not getattr(param, "hidden", False) and not (getattr(param, "help", "") or
                                                                                     "").strip():
                missing.append(f"silonet {' '.join(path)}: {param.opts[0] if param.opts else param.name}")
    assert not missing, "no help text:\n" + "\n".join(missing)


NUMBERS = [
    (("attach",), "vlan"), (("detach",), "vlan"), (("network", "create"), "--vni"),
    (("gateway", "create"), "--capacity"), (("attachment", "list"), "--limit"), (("audit",), "--limit"),
    (("token", "revoke"), "token_id"), (("serve",), "--port"),
]


@pytest.mark.parametrize(("path", "name"), NUMBERS, ids=[" ".join(p) + " " + n for p, n in NUMBERS])
def test_numbers_are_shown_as_integers(path: tuple[str, ...], name: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr(sys, "argv", ["silonet", *path, "--help"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    row = next((line for line in help_text.splitlines() if re.search(rf"(^|\s){re.escape(name)}\s", line)), None)
    assert row is not None, help_text
    assert re.search(r"<int>|INTEGER", row) and not re.search(r"<str>|TEXT", row), row


@pytest.mark.parametrize(("args", "words"), [
    (["attach", "cust-42", "bmc", "x"], ["vlan", "'x'", "not an integer"]),
    (["attach", "cust-42", "bmc", "-1"], ["vlan", "-1", "0..4094"]),
    (["network", "create", "n1", "--tenant", "t", "--vni", "5.5"], ["vni", "'5.5'", "not an integer"]),
    (["gateway", "create", "g", "--vtep-ip", "198.18.0.9", "--address", "tcp:198.18.1.9:6640", "--capacity", "0"],
     ["capacity", "0"]),
    (["token", "revoke", "one"], ["id", "'one'", "not an integer"]),
    (["audit", "--limit", "many"], ["limit", "'many'", "not an integer"]),
])
def test_a_bad_number_is_still_one_line(datadir: Path, args: list[str], words: list[str]) -> None:
    p = silonet(datadir, *args)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_piped_tables_keep_every_cell_whole(datadir: Path) -> None:
    """A pipe is not a terminal: 40 columns or not, nothing is cut, wrapped or ellipsized."""
    data = json.loads(silonet(datadir, "attachment", "list", "--json").stdout)["items"]
    reasons = {a["reason"] for a in data if a.get("reason")}
    assert reasons and all(len(r) > 40 for r in reasons)  # longer than the whole "terminal"
    p = silonet(datadir, "attachment", "list", columns=40)
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout, p.stdout
    rows = [line for line in p.stdout.splitlines() if "cust-4" in line]
    assert len(rows) == len(data), p.stdout  # one line per attachment: no cell wrapped
    for a, row in zip(data, rows, strict=True):
        assert a["status"] in row and a["reason"] in row and a["network"] in row, row
    p = silonet(datadir, "gateway", "list", columns=40)
    assert "tcp:127.0.0.1:16641" in p.stdout and "…" not in p.stdout, p.stdout
    p = silonet(datadir, "status", columns=40)
    assert "…" not in p.stdout and len([x for x in p.stdout.splitlines() if "gw-" in x]) == 4, p.stdout


def test_after_logout_a_read_names_the_empty_local_store(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    config = tmp_path / "cli-config.json"
    config.write_text(json.dumps({"server": "http://127.0.0.1:9", "token": "snt_forgotten"}))
    p = silonet(datadir, "logout")
    assert p.returncode == 0 and not config.exists(), p.stderr
    p = silonet(datadir, "network", "list")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("note: "), p.stderr
    assert str(datadir / "silonet.db") in lines[0] and "empty" in lines[0] and "silonet login" in lines[0]
    p = silonet(datadir, "network", "list", "--json")
    assert json.loads(p.stdout) == [] and "note: " in p.stderr  # the JSON on stdout stays clean
    p = silonet(datadir, "silo", "create", "s1")  # a write says what it did: no note
    assert p.returncode == 0 and p.stderr == "", p.stderr
    p = silonet(datadir, "network", "list")  # no longer empty: no note
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_errors_name_cli_flags(datadir: Path) -> None:
    p = silonet(datadir, "network", "delete", "cust-42")
    assert p.returncode == 1, p.stderr
    assert "--cascade" in p.stderr and "cascade=true" not in p.stderr, p.stderr
    assert silonet(datadir, "network", "delete", "cust-42", "--cascade").returncode == 0


def test_a_token_for_a_tenant_that_owns_nothing(datadir: Path) -> None:
    p = silonet(datadir, "token", "create", "--role", "tenant", "--tenant", "acmee")  # stdin: not a terminal
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--new-tenant" in lines[0], p.stderr
    assert "acmee" in lines[0] and "owns no network" in lines[0]
    assert json.loads(silonet(datadir, "token", "list", "--json").stdout) == []  # nothing made
    p = silonet(datadir, "token", "create", "--role", "tenant", "--tenant", "acme", "--json")  # owns cust-42
    assert p.returncode == 0 and json.loads(p.stdout)["tenant"] == "acme", p.stderr
    p = silonet(datadir, "token", "create", "--role", "tenant", "--tenant", "acmee", "--new-tenant", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["tenant"] == "acmee", p.stderr


@pytest.mark.parametrize(("answer", "made"), [("n", False), ("y", True)])
def test_at_a_terminal_it_asks(datadir: Path, answer: str, made: bool) -> None:
    leader, follower = pty.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())
        p = silonet(datadir, "token", "create", "--role", "tenant", "--tenant", "initech", stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert "owns no network yet" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert (p.returncode == 0) is made, p.stderr
    tenants = [t["tenant"] for t in json.loads(silonet(datadir, "token", "list", "--json").stdout)]
    assert tenants == (["initech"] if made else [])
