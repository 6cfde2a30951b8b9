"""/ui: the console's shell and assets are served without a token and load nothing from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.api.ui import ASSETS
from silonet.service import Manager

URL = re.compile(r"""(?:https?:)?//[^\s"'`)<>]+""")
ALLOWED = {"http://www.w3.org/2000/svg"}  # the SVG namespace name: an identifier, never fetched


@pytest.fixture
def anon(manager: Manager) -> Iterator[TestClient]:
    with TestClient(create_app(manager)) as c:
        yield c


def test_shell_needs_no_token_and_forbids_other_origins(anon: TestClient) -> None:
    r = anon.get("/ui")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert 'id="login-form"' in r.text
    assert anon.get("/v1/silos").status_code == 401  # the data stays behind the token


def test_assets_are_served_and_referenced(anon: TestClient) -> None:
    html = anon.get("/ui").text
    for name, media in ASSETS.items():
        assert f"/ui/static/{name}" in html
        r = anon.get(f"/ui/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(media) and r.content


def test_no_external_urls(anon: TestClient) -> None:
    bodies = {"/ui": anon.get("/ui").text} | {n: anon.get(f"/ui/static/{n}").text for n in ASSETS}
    for where, text in bodies.items():
        found = {u.rstrip(".,;") for u in URL.findall(text)} - ALLOWED
        assert not found, f"{where} refers to {found}"


def test_script_never_parses_data_as_html(anon: TestClient) -> None:
    """Names come from users: the page builds text nodes and attributes only."""
    js = anon.get("/ui/static/app.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink


@pytest.mark.parametrize("name", ["../app.py", "..%2Fui.py", "index.html", "nope.js", "%2e%2e"])
def test_only_listed_assets(anon: TestClient, name: str) -> None:
    assert anon.get(f"/ui/static/{name}").status_code == 404
