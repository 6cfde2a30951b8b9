"""/docs and /redoc work offline: every script, style sheet and icon their pages name is served
by silonet itself (no CDN, no other host), without a token; headless Chromium, barred from
resolving any other host, renders the operations from them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from silonet.api.app import create_app
from silonet.bench.fleet import Server
from silonet.service import Manager
from tests.conftest import ROOT

PAGES = ("/docs", "/redoc")
STATIC = "/docs/static"
MEDIA = {"text/javascript", "text/css", "image/png"}
LINKED = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def anon(manager: Manager) -> Iterator[TestClient]:
    with TestClient(create_app(manager)) as c:  # no token
        yield c


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_docs_page_loads_comes_from_silonet(anon: TestClient, page: str) -> None:
    r = anon.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    urls = LINKED.findall(r.text)
    assert any(u.endswith(".js") for u in urls), r.text  # the page really loads its script
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        asset = anon.get(url)
        assert asset.status_code == 200 and asset.content, url
        assert asset.headers["content-type"].split(";")[0] in MEDIA, url
    assert 'openapi.json' in r.text and anon.get("/openapi.json").status_code == 200
    csp = r.headers["content-security-policy"]  # nothing from anywhere else, even what a bundle tries
    assert "default-src 'self'" in csp and "img-src 'self' data:;" in csp and "http" not in csp


def test_swagger_ui_and_redoc_are_the_real_bundles(anon: TestClient) -> None:
    assert b"SwaggerUIBundle" in anon.get(f"{STATIC}/swagger-ui-bundle.js").content
    assert b".swagger-ui" in anon.get(f"{STATIC}/swagger-ui.css").content
    assert b"Redoc" in anon.get(f"{STATIC}/redoc.standalone.js").content
    assert anon.get(f"{STATIC}/favicon.png").content.startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["../core.py", "..%2Fcore.py", "consts.py", "nope.js", "%2e%2e", ""])
def test_only_listed_assets(anon: TestClient, name: str) -> None:
    assert anon.get(f"{STATIC}/{name}").status_code == 404


# ----------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def browser_and_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Server]]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (Debian packages chromium, chromium-driver; ./run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
    work = tmp_path_factory.mktemp("docs")
    server = Server(work / "server", reconcile=False).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={work / 'chromium'}",
                # offline as on a management network: no name but the server's own resolves
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(work / "chromedriver.log"))
    browser = None
    try:
        browser = webdriver.Chrome(options=opts, service=service)
        yield browser, server
    finally:
        if browser is not None:
            browser.quit()
        server.stop()


def _wait(browser: object, check: object, what: str, timeout: float = 30.0) -> object:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda d: check(d) or None)  # type: ignore
    except TimeoutException:
        raise AssertionError(f"the page did not show {what} within {timeout:.0f} s") from None


def _loaded_from(browser: object) -> set[str]:
    """The origins the page got something from (ReDoc still tries its maker's logo on a CDN: the
    page's Content-Security-Policy blocks it before any request, so it shows with status 0)."""
    names = browser.execute_script(  # type: ignore[attr-defined]
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.responseStatus > 0 || e.transferSize > 0).map(e => e.name)")
    return {f"{urlsplit(n).scheme}://{urlsplit(n).netloc}" for n in names if not n.startswith(("data:", "blob:"))}


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_offline(browser_and_server: tuple[object, Server]) -> None:
    from selenium.webdriver.common.by import By

    browser, server = browser_and_server
    operations = sum(len(ops) for ops in httpx.get(f"{server.url}/openapi.json").json()["paths"].values())
    browser.get(f"{server.url}/docs")  # type: ignore[attr-defined]
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == operations,
          f"{operations} operations")
    text = browser.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "/v1/networks/{name}/attachments" in text and "Authorize" in text
    assert _loaded_from(browser) == {server.url}
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "docs-swagger.png"))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_redoc_renders_offline(browser_and_server: tuple[object, Server]) -> None:
    from selenium.webdriver.common.by import By

    browser, server = browser_and_server
    browser.get(f"{server.url}/redoc")  # type: ignore[attr-defined]
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")) > 20,
          "the operations")
    assert "silonet" in browser.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert _loaded_from(browser) == {server.url}
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "docs-redoc.png"))  # type: ignore[attr-defined]
