"""No `silonet` command prints a traceback: every command that talks to a store or a server, with
realistic arguments and mistakes, as admin and as tenant against a real `silonet serve` and as
the admin of a local store; `--help` of every command; the wrong things a person points the CLI
at (a URL that is not one, a web server that is not silonet, a database URL that names nothing).

The matrix runs `silonet.cli.main.main()` in this process (a fresh `silonet` process per command
would take minutes): an exception escaping it is what would have been a traceback, and logging
goes to stderr as Python's last-resort handler would put it there. The commands a tenant broke
run once more as real processes, grepped as a person would see them.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import typer

from silonet.bench.fleet import Server
from silonet.cli import main as cli
from silonet.cli.backend import LocalBackend
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "topology.yaml"
EXIT_CODES = {0, 1, 2, 3, 4}  # done, refused, usage, --wait: degraded/held, still pending
SCRUB = ("SILONET_SERVER", "SILONET_TOKEN", "SILONET_ADMIN_TOKEN", "SILONET_DATABASE_URL", "SILONET_DATA_DIR",
         "SILONET_CONFIG", "COLUMNS", "FORCE_COLOR")

pytestmark = pytest.mark.slow  # a real server


@dataclass
class Run:
    args: list[str]
    who: str
    code: int | str | None
    out: str
    err: str

    def __str__(self) -> str:
        return f"[{self.who}] silonet {' '.join(self.args)} -> exit {self.code}\n{self.out}{self.err}"


class Cli:
    """Runs the CLI's entry point in this process with a given environment."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, who: str, env: dict[str, str], *args: str, stdin: str = "") -> Run:
        trace = ""
        last_resort = logging.StreamHandler(sys.stderr)  # what a CLI process without logging config shows
        last_resort.setLevel(logging.WARNING)
        with self.monkeypatch.context() as mp:
            for key in SCRUB:
                mp.delenv(key, raising=False)
            for key, value in env.items():
                mp.setenv(key, value)
            mp.setattr(sys, "argv", ["silonet", *args])
            mp.setattr(sys, "stdin", io.StringIO(stdin))
            mp.setattr(cli.state, "_backend", None)
            self.capsys.readouterr()
            logging.getLogger().addHandler(last_resort)
            last_resort.setStream(sys.stderr)
            try:
                cli.main()
                code: int | str | None = "returned without exiting"
            except SystemExit as done:
                code = done.code or 0
            except BaseException:  # what would have been a traceback: the test looks for it
                code, trace = "exception", traceback.format_exc()
            finally:
                logging.getLogger().removeHandler(last_resort)
                backend = cli.state.__dict__.get("_backend")
                if isinstance(backend, LocalBackend):
                    backend.m.db.dispose()
            out, err = self.capsys.readouterr()
        return Run(list(args), who, code, out, err + trace)


@dataclass
class Site:
    server: Server
    tenant_token: str
    local: Path  # data dir of the local store, seeded like the server
    scratch: Path

    def env(self, who: str) -> dict[str, str]:
        base = {"SILONET_CONFIG": str(self.scratch / f"cli-{who}.json"), "COLUMNS": "120"}
        if who == "local":
            return {**base, "SILONET_DATA_DIR": str(self.local)}
        token = self.server.token if who == "admin" else self.tenant_token
        return {**base, "SILONET_SERVER": self.server.url, "SILONET_TOKEN": token,
                "SILONET_DATA_DIR": str(self.scratch / "unused")}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("notrace")
    server = Server(work / "server", reconcile=False)  # the example's gateways are never dialled
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
            made = http.post("/v1/tokens", json={"role": "tenant", "tenant": "acme"})
            assert made.status_code == 201, made.text
        site = Site(server, made.json()["token"], work / "local", work)
        seeded = _process(site.env("admin"), "apply", "-f", str(EXAMPLE))
        assert seeded.returncode == 0, seeded.stderr
        yield site
    finally:
        server.stop()


BAD_YAML = "silos:\n  - {name: a\n"
EMPTY_YAML = "{}\n"

# In order: what is made early is used, changed and deleted later. {missing}, {bad}, {empty}: files.
PER_IDENTITY: list[list[str]] = [
    ["apply", "-f", str(EXAMPLE)],
    ["apply", "-f", str(EXAMPLE), "--dry-run"],
    ["apply", "-f", str(EXAMPLE), "--dry-run", "--json"],
    ["apply", "-f", "{missing}"], ["apply", "-f", "{bad}"], ["apply", "-f", "{empty}", "--prune", "--dry-run"],
    ["apply", "-f", "{empty}", "--prune"], ["apply", "-f", "-"],
    ["silo", "list"], ["silo", "list", "--json"], ["silo", "show", "vsphere-a"], ["silo", "show", "nope"],
    ["silo", "create", "s9", "--kind", "kvm", "--description", "row 9"], ["silo", "create", "s9"],
    ["silo", "create", "bad name"], ["silo", "create", "s10", "--kind", "bogus"],
    ["gateway", "list"], ["gateway", "list", "--json"], ["gateway", "show", "gw-a"], ["gateway", "show", "nope"],
    ["gateway", "create", "g9", "--vtep-ip", "198.18.0.99", "--address", "tcp:198.18.1.99:6640", "--silo", "s9",
     "--capacity", "8", "--port", "p1", "--port", "p2:switchback"],
    ["gateway", "show", "g9"],
    ["gateway", "create", "g10", "--vtep-ip", "nope", "--address", "tcp:198.18.1.100:6640"],
    ["gateway", "create", "g10", "--vtep-ip", "198.18.0.100", "--address", "tcp:198.18.1.100:6640",
     "--capacity", "many"],
    ["gateway", "create", "g10", "--vtep-ip", "198.18.0.100", "--address", "tcp:198.18.1.100:6640",
     "--port", "p1:bogus"],
    ["gateway", "create", "g10", "--vtep-ip", "198.18.0.100", "--address", "198.18.1.100", "--driver", "ssh",
     "--dialect", "nope", "--credentials", "env:NOPE"],
    ["group", "create", "g9grp", "--member", "g9:p1", "--switchback", "g9:p2", "--silo", "s9"],
    ["group", "create", "bad", "--member", "nocolon"], ["group", "create", "bad2", "--member", "nope:p1"],
    ["group", "list"], ["group", "show", "vsa"], ["group", "show", "nope"],
    ["network", "create", "n9", "--tenant", "acme", "--vni", "7000"],
    ["network", "create", "n10", "--tenant", "acme", "--vni", "x"],
    ["network", "create", "n11", "--tenant", "globex"],
    ["network", "list"], ["network", "show", "cust-42"], ["network", "show", "cust-43"], ["network", "show", "n9"],
    ["attach", "n9", "g9grp", "10"], ["attach", "n9", "g9grp", "12", "--wait", "0.5"],
    ["attach", "n9", "g9grp", "13", "--json"], ["attach", "n9", "g9grp", "10"],
    ["attach", "n9", "g9grp", "4095"], ["attach", "n9", "g9grp", "x"], ["attach", "n9", "g9grp", "-1"],
    ["attach", "nope", "g9grp", "10"], ["attach", "n9", "g9grp", "11", "--wait", "nan"],
    ["attachment", "list"], ["attachment", "list", "--all", "--limit", "2"], ["attachment", "list", "--limit", "0"],
    ["attachment", "list", "--limit", "x"], ["attachment", "list", "--cursor", "bogus"],
    ["attachment", "list", "--network", "nope", "--json"], ["attachment", "list", "--group", "g9grp"],
    ["plan"], ["plan", "--json"], ["plan", "--gateway", "gw-a"], ["plan", "--gateway", "nope"],
    ["status"], ["status", "--json"], ["status", "gw-a"], ["status", "g9"], ["status", "nope"],
    ["audit"], ["audit", "--json"], ["audit", "--limit", "0"], ["audit", "--limit", "x"],
    ["token", "create", "--role", "tenant", "--tenant", "acme"],
    ["token", "create", "--role", "tenant", "--tenant", "nobody-yet"],
    ["token", "create", "--role", "tenant", "--tenant", "nobody-yet", "--new-tenant", "--json"],
    ["token", "create", "--role", "bogus"], ["token", "create", "--role", "tenant"],
    ["token", "create", "--role", "admin", "--description", "scraper"],
    ["token", "list"], ["token", "revoke", "999999"], ["token", "revoke", "x"], ["token", "revoke", "0"],
    ["detach", "n9", "g9grp", "10"], ["detach", "n9", "g9grp", "10"], ["detach", "n9", "g9grp", "x"],
    ["detach", "n9", "g9grp", "12", "--wait", "0.5"],
    ["network", "delete", "cust-43"], ["network", "delete", "nope", "--cascade"],
    ["network", "delete", "n9"], ["network", "delete", "n9", "--cascade"], ["network", "delete", "cust-43",
                                                                          "--cascade"],
    ["group", "delete", "g9"], ["group", "delete", "g9grp"], ["group", "delete", "nope"],
    ["gateway", "delete", "gw-a"], ["gateway", "delete", "nope"], ["gateway", "delete", "g9"],
    ["gateway", "delete", "g9", "--force"], ["gateway", "delete", "g9", "--wait", "0.5"],
    ["silo", "delete", "s9"], ["silo", "delete", "nope"],
    ["apply", "-f", str(EXAMPLE), "--wait", "0.5"],
]

ONCE: list[list[str]] = [
    ["dialects"], ["dialects", "--json"], ["version"], ["db", "upgrade"], ["logout"], ["logout"],
    ["login", "--server", "notaurl", "--token", "x"], ["login", "--server", "http://[::1", "--token", "x"],
    ["--server", "http://[::1", "silo", "list"], ["--server", "ftp://x", "silo", "list"],
    ["--server", "http://127.0.0.1:9", "silo", "list"],
    ["serve", "--port", "99999"], ["serve", "--port", "x"], ["serve", "--log-format", "bogus"],
    ["lab", "status", "--dir", "{lab}"], ["lab", "inventory", "--dir", "{lab}"],
    ["lab", "inventory", "--dir", "{lab}", "--topology", "paper"],
    ["lab", "inventory", "--dir", "{lab}", "--topology", "{missing}"], ["lab", "topology"],
    ["lab", "topology", "--topology", "{bad}"], ["lab", "down", "--dir", "{lab}"],
    ["nosuchcommand"], ["silo"], [],
]


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "bad.yaml").write_text(BAD_YAML)
    (tmp / "empty.yaml").write_text(EMPTY_YAML)
    return {"missing": str(tmp / "missing.yaml"), "bad": str(tmp / "bad.yaml"), "empty": str(tmp / "empty.yaml"),
            "lab": str(tmp / "lab")}


def _failed(run: Run) -> bool:
    return "Traceback" in run.out + run.err or run.code not in EXIT_CODES


def test_no_command_prints_a_traceback(site: Site, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run = Cli(capsys, monkeypatch)
    files = _files(tmp_path)
    runs: list[Run] = []
    for args in PER_IDENTITY:
        for who in ("admin", "tenant", "local"):
            stdin = EXAMPLE.read_text() if args[-1] == "-" else ""
            runs.append(run(who, site.env(who), *(a.format(**files) for a in args), stdin=stdin))
    for args in ONCE:
        env = {**site.env("local"), "SILONET_ADMIN_TOKEN": "snt_a-long-enough-admin-secret"}
        runs.append(run("none", env, *(a.format(**files) for a in args)))
    bad = [r for r in runs if _failed(r)]
    assert not bad, f"{len(bad)} of {len(runs)} runs broke:\n\n" + "\n\n".join(map(str, bad))
    by = {(r.who, " ".join(r.args)): r for r in runs}
    # the tenant's view of gateways: no management column, the rest as the admin sees it
    tenant_list = by[("tenant", "gateway list")]
    assert tenant_list.code == 0 and "gw-a" in tenant_list.out and "198.18.0.1" in tenant_list.out
    assert "management" not in tenant_list.out and "tcp:" not in tenant_list.out
    assert "management" in by[("admin", "gateway list")].out
    assert by[("tenant", "gateway show gw-a")].code == 0
    # the CLI names its own flags, not the API's query parameters
    refused = by[("admin", "network delete cust-43")]
    assert refused.code == 1 and "--cascade" in refused.err and "cascade=true" not in refused.err, refused


def test_wrong_endpoints_are_one_line(site: Site, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A web server that is not silonet, a config file written by hand, a database URL of nothing."""
    run = Cli(capsys, monkeypatch)
    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "silos").write_text("<html>not silonet</html>")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object) -> None:
            super().__init__(*a, directory=str(tmp_path / "www"))  # type: ignore[arg-type]

        def log_message(self, *_a: object) -> None:  # its access log is not the CLI's stderr
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}"
        (tmp_path / "cfg.json").write_text(json.dumps({"server": 5, "token": ["x"]}))
        env = site.env("local")
        runs = [
            run("web", {**env, "SILONET_SERVER": url}, "silo", "list"),  # 200 with HTML
            run("web", {**env, "SILONET_SERVER": url}, "gateway", "list"),  # 404 with HTML
            run("web", env, "login", "--server", url, "--token", "snt_x"),
            run("cfg", {**env, "SILONET_CONFIG": str(tmp_path / "cfg.json")}, "silo", "list"),
            run("db", {**env, "SILONET_DATABASE_URL": "bogus://x"}, "silo", "list"),
            run("db", {**env, "SILONET_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:9/x"}, "silo", "list"),
            run("db", {**env, "SILONET_DATABASE_URL": "bogus://x"}, "db", "upgrade"),
        ]
    finally:
        web.shutdown()
        web.server_close()
    for r in runs:
        assert r.code == 1 and not _failed(r), r
        lines = r.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r
        assert "<html" not in r.err, r
    assert "not silonet's JSON" in runs[0].err and "not silonet's JSON" in runs[1].err
    assert "SILONET_DATABASE_URL" in runs[4].err and "SILONET_DATABASE_URL" in runs[5].err


def _paths(command: typer.core.TyperGroup | typer.core.TyperCommand, path: tuple[str, ...] = ()
           ) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*path, name))


def test_help_of_every_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    run = Cli(capsys, monkeypatch)
    paths = list(_paths(typer.main.get_command(cli.app)))
    assert len(paths) > 40 and ("attachment", "list") in paths and ("lab", "up") in paths
    env = {"SILONET_DATA_DIR": str(tmp_path), "SILONET_CONFIG": str(tmp_path / "c.json"), "COLUMNS": "100"}
    for path in paths:
        r = run("help", env, *path, "--help")
        assert r.code == 0 and not _failed(r) and "Usage" in r.out, r
    assert not (tmp_path / "silonet.db").exists()  # help touches no store


def _process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SCRUB}
    return subprocess.run([sys.executable, "-m", "silonet.cli.main", *args], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["gateway", "list"], ["gateway", "show", "gw-b"], ["gateway", "list", "--json"]])
def test_tenant_reads_gateways_in_a_real_process(site: Site, args: list[str]) -> None:
    p = _process(site.env("tenant"), *args)
    assert "Traceback" not in p.stdout + p.stderr, p.stderr
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "gw-b" in p.stdout and "198.18.0.2" in p.stdout
