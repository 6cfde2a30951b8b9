"""The console's tenant view in headless Chromium against a real `silonet serve` (API only): an admin
sees every tenant's contract with its grants and use, a tenant token its own alone, and a quota
reached is marked. Debian's chromium and chromedriver; skipped where they are missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from silonet.bench.fleet import Server
from tests.conftest import EXAMPLE

pytestmark = [pytest.mark.slow]

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
from selenium.webdriver.common.by import By  # noqa: E402

from tests.api.test_ui_console import headless_chromium, skip_without_chromium, wait  # noqa: E402


@dataclass
class Console:
    server: Server
    http: httpx.Client
    browser: Any
    acme_token: str
    initech_token: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    skip_without_chromium()
    work = tmp_path_factory.mktemp("ui-tenants")
    server = Server(work / "server", reconcile=False)
    browser = None
    try:
        server.start()
        http = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
        http.post("/v1/apply", json=yaml.safe_load(EXAMPLE.read_text())).raise_for_status()
        http.post("/v1/tenants", json={"name": "acme", "interface_groups": ["vsa", "kvb"], "max_networks": 1,
                                       "vni_pool": {"first": 20000, "last": 20999}}).raise_for_status()
        http.post("/v1/tenants", json={"name": "globex", "max_attachments": 10}).raise_for_status()
        tokens = [http.post("/v1/tokens", json={"role": "tenant", "tenant": t}).json()["token"]
                  for t in ("acme", "initech")]
        browser = headless_chromium(work)
        yield Console(server, http, browser, *tokens)
        http.close()
    finally:
        if browser is not None:
            browser.quit()
        server.stop()


def log_in(c: Console, token: str) -> None:
    b = c.browser
    b.get(f"{c.server.url}/ui")
    b.execute_script("sessionStorage.clear()")
    b.get(f"{c.server.url}/ui")
    wait(b, lambda d: d.find_element(By.ID, "token"), "the login form").send_keys(token)
    b.find_element(By.ID, "login-button").click()
    wait(b, lambda d: d.find_element(By.ID, "refreshed").text.startswith("refreshed"), "the first refresh")


def rows(browser: Any) -> dict[str, list[str]]:
    return {r.get_attribute("data-tenant"): [td.text for td in r.find_elements(By.TAG_NAME, "td")]
            for r in browser.find_elements(By.CSS_SELECTOR, "#tenants tbody tr[data-tenant]")}


def test_an_admin_sees_every_contract_with_grants_and_use(console: Console) -> None:
    log_in(console, console.server.token)
    b = console.browser
    shown = wait(b, lambda d: len(rows(d)) == 2 and rows(d), "two tenants")
    name, _groups, pool, networks, attachments = shown["acme"]
    assert (name, pool, networks, attachments) == ("acme", "20000\u201320999", "1 / 1", "3 / \u221e")
    chips = [c.text for c in b.find_elements(By.CSS_SELECTOR, "#tenants tr[data-tenant='acme'] .chip")]
    assert chips == ["kvb", "vsa"]
    assert shown["globex"] == ["globex", "none granted", "\u2014", "1 / \u221e", "2 / 10"]
    full = b.find_element(By.CSS_SELECTOR, "#tenants tr[data-tenant='acme'] td.full")  # acme is at its quota
    assert full.text == "1 / 1" and full.get_attribute("title") == "0 left"
    assert not b.find_elements(By.CSS_SELECTOR, "#tenants tr[data-tenant='globex'] td.full")
    console.http.patch("/v1/tenants/globex", json={"max_attachments": 2}).raise_for_status()
    wait(b, lambda d: rows(d)["globex"][4] == "2 / 2", "globex's new quota (a refresh later)")


def test_a_tenant_token_sees_its_own_contract_only(console: Console) -> None:
    log_in(console, console.acme_token)
    b = console.browser
    shown = wait(b, lambda d: rows(d), "acme's contract")
    assert list(shown) == ["acme"]
    assert b.find_element(By.ID, "role").text == "tenant acme"
    log_in(console, console.initech_token)  # no record: not limited, and the page says so
    empty = wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#tenants tbody tr.empty"), "the empty row")
    assert empty[0].text == "no contract: this tenant is not limited"
