"""The /ui console in headless Chromium against a real `silonet serve` driving the paper lab.

Debian's chromium and chromedriver (./run installs them); Selenium is pointed at
/usr/bin/chromedriver, so it never downloads a driver. Prefix ``su`` index 14: no other lab's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from silonet.bench.fleet import Server
from silonet.demo import JOINED, NETWORK
from silonet.lab import Lab, paper_topology
from tests.conftest import ROOT, fresh_lab
from tests.e2e.conftest import _missing

pytestmark = [pytest.mark.root, pytest.mark.ovs, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "ui-topology.png"
FAULT_SCREENSHOT = ARTIFACTS / "ui-topology-failed.png"
PERIOD_S = 2.0  # the server's reconcile period; the page polls every 2 s
SEEN_S = 20.0  # generous bound for "the page shows it": a poll, plus a reconcile round to notice a dead device

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@dataclass
class Stack:
    lab: Lab
    server: Server
    http: httpx.Client
    browser: webdriver.Chrome

    def open(self, token: str) -> None:
        """A fresh page, logged in with ``token``."""
        b = self.browser
        b.get(f"{self.server.url}/ui")
        b.execute_script("sessionStorage.clear()")
        b.get(f"{self.server.url}/ui")
        field = wait(b, lambda d: d.find_element(By.ID, "token"), "the login form")
        field.send_keys(token)
        b.find_element(By.ID, "login-button").click()
        wait(b, lambda d: d.find_element(By.ID, "refreshed").text.startswith("refreshed"), "the first refresh")


def wait(browser: webdriver.Chrome, check, what: str, timeout: float = SEEN_S):  # type: ignore[no-untyped-def]
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
                             ).until(lambda d: check(d) or None)
    except TimeoutException:
        raise AssertionError(f"the page did not show {what} within {timeout:.0f} s") from None


def _chromium_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return f"missing {', '.join(missing)} (Debian packages chromium, chromium-driver; ./run installs them)" \
        if missing else None


def _browser(workdir: Path) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1100",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={workdir / 'chromium'}"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(workdir / "chromedriver.log"))
    return webdriver.Chrome(options=opts, service=service)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if why := _missing() or _chromium_missing():
        pytest.skip(why)
    work = tmp_path_factory.mktemp("ui")
    lab = fresh_lab("su", 14)
    server = Server(work / "server", period=PERIOD_S)
    browser = None
    try:
        lab.up(paper_topology())
        server.start()
        http = httpx.Client(base_url=server.url, headers=server.headers, timeout=60)
        http.post("/v1/apply", json=lab.inventory()).raise_for_status()
        http.post("/v1/networks", json=NETWORK).raise_for_status()
        for group, vlan in JOINED:
            r = http.post(f"/v1/networks/{NETWORK['name']}/attachments?wait=30",
                          json={"interface_group": group, "vlan": vlan})
            assert r.status_code == 201 and r.json()["status"] == "realized", r.text
        browser = _browser(work)
        yield Stack(lab, server, http, browser)
        http.close()
    finally:
        if browser is not None:
            browser.quit()
        server.stop()
        lab.down()


def silos_drawn(b: webdriver.Chrome) -> list[str]:
    return [e.get_attribute("data-silo") for e in b.find_elements(By.CSS_SELECTOR, "#topology g.silo")]


def test_admin_sees_the_lab_and_the_demo_network(stack: Stack) -> None:
    b = stack.browser
    stack.open(stack.server.token)
    lab_silos = sorted(s["name"] for s in stack.lab.status()["silos"])
    assert len(lab_silos) == 5  # the paper's four and the PaaS silo behind its redundant pair
    wait(b, lambda d: sorted(silos_drawn(d)) == lab_silos, f"the silos {lab_silos}")
    demo = "#topology g.net[data-network='demo'][data-state='realized']"
    net = wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, demo), "the demo network, realized")[0]
    assert net.get_attribute("data-vni") == str(NETWORK["vni"])
    labels = {e.text for e in net.find_elements(By.CSS_SELECTOR, "text.vlan-label")}
    assert labels == {f"{g} {v or 'untagged'}" for g, v in JOINED}, labels
    assert "VNI 5000" in net.text
    gateways = [g["name"] for g in stack.http.get("/v1/gateways").json()]
    rows = wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#gateways tr[data-state='realized']"),
                "the gateways realized")
    assert sorted(r.get_attribute("data-gateway") for r in rows) == sorted(gateways)
    assert len(b.find_elements(By.CSS_SELECTOR, "#attachments tr[data-network='demo']")) == len(JOINED)
    for panel in ("panel-gateways", "panel-plan", "panel-audit"):
        assert b.find_element(By.ID, panel).is_displayed(), panel
    assert "nothing to do" in b.find_element(By.ID, "plan-summary").text
    assert b.find_elements(By.CSS_SELECTOR, "#audit tbody tr[data-id]")
    Select(b.find_element(By.ID, "filter-group")).select_by_value("kvm1")
    shown = "#attachments tr[data-group]"
    wait(b, lambda d: [r.get_attribute("data-group") for r in d.find_elements(By.CSS_SELECTOR, shown)] == ["kvm1"],
         "the attachments filtered to kvm1")
    Select(b.find_element(By.ID, "filter-group")).select_by_value("")
    ARTIFACTS.mkdir(exist_ok=True)
    assert b.find_element(By.ID, "panel-topology").screenshot(str(SCREENSHOT))
    print(f"\nscreenshot of the topology view: {SCREENSHOT}")


def test_markup_in_user_text_stays_text(stack: Stack) -> None:
    """A description with HTML shows up in the audit log as the characters typed, not as an element."""
    b = stack.browser
    probe = '<img src="/nope" id="injected"><script>window.injected = 1</script>'
    stack.http.post("/v1/silos", json={"name": "probe", "description": probe}).raise_for_status()
    try:
        stack.open(stack.server.token)
        wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#topology g.silo[data-silo='probe']"), "the probe silo")
        entry = wait(b, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#audit tbody tr[data-id]")
                                   if "silo/probe" in r.text], "the probe's audit entry")[0]
        entry.find_element(By.TAG_NAME, "summary").click()
        assert '<img src=\\"/nope\\" id=\\"injected\\">' in entry.find_element(By.TAG_NAME, "pre").text
        assert not b.find_elements(By.ID, "injected")
        assert b.execute_script("return window.injected === undefined")
    finally:
        stack.http.delete("/v1/silos/probe")


def test_tenant_sees_only_its_networks(stack: Stack) -> None:
    b = stack.browser
    stack.http.post("/v1/networks", json={"name": "globex-net", "tenant": "globex", "vni": 5001}).raise_for_status()
    created = stack.http.post("/v1/tokens", json={"role": "tenant", "tenant": NETWORK["tenant"], "description": "ui"})
    created.raise_for_status()
    try:
        stack.open(created.json()["token"])
        wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#networks tr[data-network='demo']"), "the demo network")
        nets = {e.get_attribute("data-network") for e in b.find_elements(By.CSS_SELECTOR, "[data-network]")}
        assert nets == {"demo"}, nets
        assert b.find_element(By.ID, "role").text == f"tenant {NETWORK['tenant']}"
        for panel in ("panel-gateways", "panel-plan", "panel-audit"):
            assert not b.find_element(By.ID, panel).is_displayed(), panel
        assert sorted(silos_drawn(b)) == sorted(s["name"] for s in stack.lab.status()["silos"])
        b.find_element(By.ID, "logout").click()
        assert b.find_element(By.ID, "login").is_displayed()
        assert b.execute_script("return sessionStorage.getItem('silonet.token')") is None
    finally:
        stack.http.delete(f"/v1/tokens/{created.json()['id']}")
        stack.http.delete("/v1/networks/globex-net")


def test_killed_ovsdb_server_shows_failed(stack: Stack) -> None:
    """The gateway's row and drawing turn failed; the lab (and the fault with it) goes at teardown."""
    b = stack.browser
    stack.open(stack.server.token)
    wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#gateways tr[data-gateway='gw-kvm'][data-state='realized']"),
         "gw-kvm realized")
    assert stack.lab.kill_daemon("gw-kvm", "ovsdb-server")
    killed = time.monotonic()
    wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#gateways tr[data-gateway='gw-kvm'][data-reachable='false']"),
         "gw-kvm unreachable")
    seen = time.monotonic() - killed
    drawn = b.find_element(By.CSS_SELECTOR, "#topology g.gw[data-gateway='gw-kvm']")
    assert drawn.get_attribute("data-state") == "failed"
    assert "unreachable" in drawn.text
    row = b.find_element(By.CSS_SELECTOR, "#gateways tr[data-gateway='gw-kvm']")
    assert "198.18." in row.text  # the last error names the device's address
    others = b.find_elements(By.CSS_SELECTOR, "#gateways tr[data-reachable='false']")
    assert [r.get_attribute("data-gateway") for r in others] == ["gw-kvm"]
    print(f"\nkilled gw-kvm's ovsdb-server: the page showed it unreachable after {seen:.1f} s")
    ARTIFACTS.mkdir(exist_ok=True)
    assert b.find_element(By.ID, "panel-topology").screenshot(str(FAULT_SCREENSHOT))

