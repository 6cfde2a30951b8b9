"""Tokens and login through the real `silonet` command: the config file is 0600, a token is
never sent to another server, and `serve` refuses to run with no way in."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from silonet.bench.fleet import Server
from silonet.cli import config as cli_config

ROOT = Path(__file__).resolve().parents[2]


def silonet(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SILONET_") and k != "FORCE_COLOR"}
    base.update(SILONET_DATA_DIR=str(home / "data"), SILONET_CONFIG=str(home / "cfg" / "config.json"), **env)
    return subprocess.run([sys.executable, "-m", "silonet.cli.main", *args], env=base, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def test_serve_refuses_to_start_without_any_admin_token(tmp_path: Path) -> None:
    p = silonet(tmp_path, "serve", "--port", "1", "--no-reconcile")
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "SILONET_ADMIN_TOKEN" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_serve_refuses_a_weak_admin_token(tmp_path: Path) -> None:
    p = silonet(tmp_path, "serve", "--port", "1", "--no-reconcile", SILONET_ADMIN_TOKEN="short")
    assert p.returncode == 1 and p.stderr.startswith("error: SILONET_ADMIN_TOKEN: at least 16 characters"), p.stderr
    assert p.stderr.strip().count("\n") == 0
    assert not (tmp_path / "data").exists()  # refused before anything was written


def test_local_token_commands(tmp_path: Path) -> None:
    p = silonet(tmp_path, "token", "create", "--role", "tenant", "--tenant", "acme", "--new-tenant", "--json")
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert made["token"].startswith("snt_") and made["tenant"] == "acme"
    listed = json.loads(silonet(tmp_path, "token", "list", "--json").stdout)
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    p = silonet(tmp_path, "token", "create", "--role", "tenant")
    assert p.returncode == 1 and p.stderr.startswith("error: tenant:"), p.stderr
    assert silonet(tmp_path, "token", "revoke", str(made["id"])).returncode == 0
    p = silonet(tmp_path, "token", "revoke", str(made["id"]))
    assert p.returncode == 1 and "does not exist" in p.stderr


@pytest.mark.slow
def test_login_keeps_server_and_token_0600_and_uses_them(tmp_path: Path) -> None:
    server = Server(tmp_path / "server").start()
    try:
        p = silonet(tmp_path, "login", "--server", server.url, "--token", "snt_wrong")
        assert p.returncode == 1 and "HTTP 401" in p.stderr and p.stderr.count("\n") == 1, p.stderr
        assert not (tmp_path / "cfg" / "config.json").exists()  # nothing written on a failed login
        p = silonet(tmp_path, "login", "--server", server.url, "--token", server.token)
        assert p.returncode == 0, p.stderr
        cfg = tmp_path / "cfg" / "config.json"
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
        assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
        assert json.loads(cfg.read_text()) == {"server": server.url, "token": server.token}
        p = silonet(tmp_path, "network", "create", "n1", "--tenant", "acme", "--json")  # no --server: the saved one
        assert p.returncode == 0, p.stderr
        assert not (tmp_path / "data" / "silonet.db").exists()  # it went to the server, not a local store
        assert silonet(tmp_path, "logout").returncode == 0 and not cfg.exists()
    finally:
        server.stop()


def test_a_saved_token_goes_only_to_its_own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILONET_CONFIG", str(tmp_path / "c.json"))
    monkeypatch.delenv("SILONET_ADMIN_TOKEN", raising=False)
    cli_config.save(cli_config.CliConfig("http://127.0.0.1:1", "snt_saved"))
    assert cli_config.resolve(None, None) == cli_config.CliConfig("http://127.0.0.1:1", "snt_saved")
    assert cli_config.resolve("http://127.0.0.1:2", None) == cli_config.CliConfig("http://127.0.0.1:2", None)
    assert cli_config.resolve(None, "snt_flag").token == "snt_flag"
    monkeypatch.setenv("SILONET_ADMIN_TOKEN", "snt_env")
    assert cli_config.resolve("http://127.0.0.1:2", None).token == "snt_env"
    assert cli_config.resolve("http://localhost:2", None).token == "snt_env"
    assert cli_config.resolve("http://198.18.0.9:8080", None).token is None  # the admin's secret stays here
    cli_config.save(cli_config.CliConfig(None, "snt_saved"))  # a token without its server goes nowhere
    assert cli_config.resolve("http://198.18.0.9:8080", None).token is None
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary left
    (tmp_path / "c.json").write_text("[not json")
    with pytest.raises(Exception, match="unreadable"):
        cli_config.load()
