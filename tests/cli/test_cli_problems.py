"""One red line per problem through the real `silonet` command: a file with three mistakes gets
three `error:` lines naming each place (on the local store and with a server), a server's
``problems`` reach the terminal the same way, more than five end in a count; nothing is written."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Server
from silonet.model import rules
from tests.cli.test_cli_errors import rows, silonet

THREE_PROBLEMS = """\
gateways:
  - name: dc-gw1
    vtep_ip: 198.18.0.11
    management: {driver: ovsdb, address: "tcp:198.18.1.11:6640"}
    ports: [{name: xe1}]
  - name: dc-gw2
    vtep_ip: 198.18.0.12
    capacty: 8
    management: {driver: ovsdb, address: "198.18.1.12:6640"}
networks:
  - {name: shop-prod, tenant: shop, vni: 0}
"""


def error_lines(p: subprocess.CompletedProcess[str]) -> list[str]:
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert p.stdout == "", p.stdout
    lines = p.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), p.stderr
    return [line.removeprefix("error: ") for line in lines]


def expected(source: Path) -> list[str]:
    return [f"{source}: gateways[dc-gw2].capacty: unknown field",
            f"{source}: gateways[dc-gw2].management.address: '198.18.1.12:6640' {rules.OVSDB_ADDRESS_RULE}",
            f"{source}: networks[shop-prod].vni: 0: {rules.VNI_RULE}"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`silonet serve` in its own process, API only (nothing is dialled)."""
    srv = Server(tmp_path_factory.mktemp("server"), reconcile=False).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_file_with_three_problems_gives_three_lines_on_the_local_store(tmp_path: Path) -> None:
    datadir, path = tmp_path / "data", tmp_path / "dc.yaml"
    path.write_text(THREE_PROBLEMS)
    assert error_lines(silonet(datadir, "apply", "-f", str(path))) == expected(path)
    assert error_lines(silonet(datadir, "apply", "--dry-run", "-f", str(path))) == expected(path)
    stored = rows(datadir)
    assert stored["gateways"] == [] and stored["networks"] == []


def test_a_file_with_three_problems_gives_three_lines_with_a_server(tmp_path: Path, server: Server) -> None:
    path = tmp_path / "dc.yaml"
    path.write_text(THREE_PROBLEMS)
    p = silonet(tmp_path / "data", "--server", server.url, "--token", server.token, "apply", "-f", str(path))
    assert error_lines(p) == expected(path)
    assert httpx.get(f"{server.url}/v1/gateways", headers=server.headers).json() == []
    assert not (tmp_path / "data" / "silonet.db").exists()  # the server was asked, not a local store


GATEWAY = ["gateway", "create", "gw-9", "--vtep-ip", "1.2.3", "--address", "198.18.1.9:6640", "--port", "xe1",
           "--port", "-x"]


def test_a_servers_problems_are_one_line_each(tmp_path: Path, server: Server) -> None:
    p = silonet(tmp_path / "data", "--server", server.url, "--token", server.token, *GATEWAY)
    lines = error_lines(p)
    assert [line.split(":", 1)[0] for line in lines] == ["vtep_ip", "management.address", "ports[1].name"]
    assert lines[0].endswith("(HTTP 422)") and "'1.2.3' is not an IPv4 address" in lines[0]
    assert rules.OVSDB_ADDRESS_RULE in lines[1] and "must start with a letter or a digit" in lines[2]
    assert httpx.get(f"{server.url}/v1/gateways", headers=server.headers).json() == []
    local = error_lines(silonet(tmp_path / "data", *GATEWAY))  # the same three on the local store
    assert [line.removesuffix(" (HTTP 422)") for line in lines] == local


def test_more_than_five_problems_end_in_a_count(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("silos:\n" + "".join(f"  - {{name: s{i}, colour: red}}\n" for i in range(8)))
    lines = error_lines(silonet(tmp_path / "data", "apply", "-f", str(path)))
    assert lines == [f"{path}: silos[s{i}].colour: unknown field" for i in range(5)] + ["and 3 more problem(s)"]
