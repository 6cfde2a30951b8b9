"""`silonet attachment list`: pages on the local store (the real command in a subprocess)
and through a server (the RemoteBackend against the app)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from silonet.cli.backend import RemoteBackend, RemoteError
from silonet.service import Manager
from tests.support.cli import EXAMPLE
from tests.support.cli import silonet as run

ALL = [("cust-42", "vsa", 100), ("cust-42", "kvb", 2100), ("cust-42", "bmc", 300), ("cust-43", "kvb", 2200),
       ("cust-43", "pad", 0)]


def silonet(datadir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(datadir, *args, columns=200)


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("listing") / "data"
    p = silonet(d, "apply", "-f", str(EXAMPLE))
    assert p.returncode == 0, p.stderr
    return d


def keys(items: list[dict]) -> list[tuple[str, str, int]]:
    return [(a["network"], a["interface_group"], a["vlan"]) for a in items]


def test_one_page_then_all(datadir: Path) -> None:
    p = silonet(datadir, "attachment", "list", "--limit", "2", "--json")
    assert p.returncode == 0, p.stderr
    page = json.loads(p.stdout)
    assert keys(page["items"]) == ALL[:2] and page["limit"] == 2 and page["next_cursor"]
    p = silonet(datadir, "attachment", "list", "--limit", "2", "--cursor", page["next_cursor"], "--json")
    assert keys(json.loads(p.stdout)["items"]) == ALL[2:4]
    p = silonet(datadir, "attachment", "list", "--limit", "2", "--all", "--json")
    assert p.returncode == 0, p.stderr
    every = json.loads(p.stdout)
    assert keys(every["items"]) == ALL and every["next_cursor"] is None


def test_filters_and_table(datadir: Path) -> None:
    p = silonet(datadir, "attachment", "list", "--network", "cust-43", "--json")
    assert keys(json.loads(p.stdout)["items"]) == ALL[3:]
    p = silonet(datadir, "attachment", "list", "--group", "kvb", "--limit", "1", "--all", "--json")
    assert keys(json.loads(p.stdout)["items"]) == [ALL[1], ALL[3]]
    p = silonet(datadir, "attachment", "list", "--limit", "3")
    assert p.returncode == 0, p.stderr
    assert "Attachments" in p.stdout and "cust-42" in p.stdout and "pending" in p.stdout
    assert "more: --cursor " in p.stdout and "cust-43" not in p.stdout


@pytest.mark.parametrize(("args", "words"), [
    (["--limit", "0"], ["limit", "1..1000"]),
    (["--limit", "many"], ["limit", "not an integer"]),
    (["--cursor", "bogus"], ["cursor"]),
    (["--network", "nope"], ["network", "nope", "does not exist"]),
])
def test_bad_input_is_one_error_line(datadir: Path, args: list[str], words: list[str]) -> None:
    p = silonet(datadir, "attachment", "list", *args)
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in p.stderr, p.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_remote_backend_pages_through_the_api(client: Any, seeded: Manager) -> None:
    remote = RemoteBackend("http://testserver", None)
    remote.http = client  # the TestClient is an httpx client on the app
    page = remote.attachments(2, None, None, None)
    assert keys(page["items"]) == ALL[:2]
    page = remote.attachments(2, page["next_cursor"], None, None)
    assert keys(page["items"]) == ALL[2:4]
    assert keys(remote.attachments(10, None, "cust-42", "bmc")["items"]) == [ALL[2]]
    with pytest.raises(RemoteError) as err:
        remote.attachments(0, None, None, None)
    assert err.value.field == "limit" and "422" in str(err.value)
