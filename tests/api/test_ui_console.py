"""The /ui console in headless Chromium at 1400x900 against a real `silonet serve` (API only, no
devices: realization records are written into its database as a reconciler would). Generations
read desired then realized, a gateway with a foreign-binding fault carries a mark, degraded has
its own colour, and a seven-silo topology fits the window with no label over a line.

Debian's chromium and chromedriver (./run installs them); skipped where they are missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from silonet.bench.fleet import Server
from silonet.store.db import Database
from silonet.store.repo import Observation, Repository
from tests.conftest import EXAMPLE

pytestmark = [pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FOREIGN = "foreign binding: VLAN 2100 on p1 is bound to logical switch 'theirs'"
AHEAD = 8  # the gateways realized generations past the one their desired state last changed at

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@dataclass
class Console:
    server: Server
    http: httpx.Client
    browser: Any


def wait(browser: Any, check: Any, what: str, timeout: float = 20.0) -> Any:
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
                             ).until(lambda d: check(d) or None)
    except TimeoutException:
        raise AssertionError(f"the page did not show {what} within {timeout:.0f} s") from None


def skip_without_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (Debian packages chromium, chromium-driver)")


def headless_chromium(work: Path) -> Any:
    """Debian's chromium through its chromedriver, its profile and log in ``work``."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions",
                f"--user-data-dir={work / 'chromium'}"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(work / "chromedriver.log"))
    return webdriver.Chrome(options=opts, service=service)


def seven_silos() -> dict:
    """The example (four silos) and a data center of three more, with long names on purpose."""
    topo = yaml.safe_load(EXAMPLE.read_text())
    for i, silo in enumerate(("dc-east", "dc-west", "dc-core-with-a-long-name")):
        topo["silos"].append({"name": silo, "kind": "other"})
        topo["gateways"].append({"name": f"dc-gw{i + 1}", "silo": silo, "vtep_ip": f"198.18.0.{20 + i}",
                                 "management": {"driver": "ovsdb", "address": f"tcp:198.18.1.{20 + i}:6640"},
                                 "ports": [{"name": "xe1"}]})
        topo["interface_groups"].append({"name": f"rack-{silo}", "silo": silo,
                                         "members": [{"gateway": f"dc-gw{i + 1}", "port": "xe1"}]})
    topo["networks"] += [
        {"name": "shop-prod", "tenant": "shop", "vni": 7000, "attachments": [
            {"interface_group": "rack-dc-east", "vlan": 110}, {"interface_group": "rack-dc-west", "vlan": 110},
            {"interface_group": "rack-dc-core-with-a-long-name", "vlan": 110},
            {"interface_group": "vsa", "vlan": 110}]},
        {"name": "shop-database-replication", "tenant": "shop", "vni": 7001, "attachments": [
            {"interface_group": "rack-dc-east", "vlan": 120}, {"interface_group": "rack-dc-core-with-a-long-name",
                                                               "vlan": 120},
            {"interface_group": "kvb", "vlan": 120}, {"interface_group": "kvb", "vlan": 121}]},
    ]
    return topo


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    skip_without_chromium()
    work = tmp_path_factory.mktemp("ui-console")
    server = Server(work / "server", reconcile=False)  # API only: no gateway is ever dialled
    browser = None
    try:
        server.start()
        http = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
        http.post("/v1/apply", json=seven_silos()).raise_for_status()
        db = Database(f"sqlite:///{server.dir / 'silonet.db'}")
        try:
            with db.write() as (s, gen):
                repo = Repository(s)
                for gw in ("gw-a", "gw-d", "dc-gw1", "dc-gw2", "dc-gw3"):
                    repo.record(gw, Observation(reachable=True, realized_generation=gen + AHEAD, error=None, drift=0))
                repo.record("gw-b", Observation(reachable=True, realized_generation=gen + AHEAD, error=None, drift=0,
                                                binding_errors={"p1/2100": FOREIGN}))
                repo.record("gw-c", Observation(reachable=False, realized_generation=None,
                                                error="cannot connect to tcp:198.18.1.3:6640: refused"))
        finally:
            db.dispose()
        browser = headless_chromium(work)
        browser.get(f"{server.url}/ui")
        wait(browser, lambda d: d.find_element(By.ID, "token"), "the login form").send_keys(server.token)
        browser.find_element(By.ID, "login-button").click()
        wait(browser, lambda d: d.find_element(By.ID, "refreshed").text.startswith("refreshed"), "the first refresh")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#gateways tr[data-gateway='gw-b']"), "the gateways")
        yield Console(server, http, browser)
        http.close()
    finally:
        if browser is not None:
            browser.quit()
        server.stop()


def cells(browser: Any, gateway: str) -> dict[str, Any]:
    """The gateway's row, by column header (its words, one line)."""
    heads = [" ".join(th.text.split()) for th in browser.find_elements(By.CSS_SELECTOR, "#gateways thead th")]
    row = browser.find_element(By.CSS_SELECTOR, f"#gateways tr[data-gateway='{gateway}']")
    return dict(zip(heads, row.find_elements(By.TAG_NAME, "td"), strict=True))


def test_generations_read_desired_then_realized(console: Console) -> None:
    status = {s["gateway"]: s for s in console.http.get("/v1/status").json()}
    heads = [" ".join(th.text.split()) for th in console.browser.find_elements(By.CSS_SELECTOR, "#gateways thead th")]
    assert heads.index("generation desired") + 1 == heads.index("generation realized"), heads
    for gw in ("gw-a", "dc-gw3"):
        desired, realized = status[gw]["desired_generation"], status[gw]["realized_generation"]
        assert realized > desired  # the record the console must not show as "realized / desired" backwards
        row = cells(console.browser, gw)
        assert row["generation desired"].text == str(desired)
        assert row["generation realized"].text == f"{realized} \u2713"  # reached: in sync
    row = cells(console.browser, "gw-c")  # never realized anything: behind
    assert row["generation realized"].text == "0 (behind)"
    assert "/" not in " ".join(td.text for td in cells(console.browser, "gw-a").values())


def test_a_gateway_with_a_foreign_binding_carries_a_mark(console: Console) -> None:
    b = console.browser
    state = cells(b, "gw-b")["state"]
    assert state.text.startswith("realized")
    mark = state.find_element(By.CSS_SELECTOR, ".fault-mark")
    assert mark.text == "\u26a0 1 fault" and FOREIGN in mark.get_attribute("title")
    assert b.find_element(By.CSS_SELECTOR, "#gateways tr[data-gateway='gw-b']").get_attribute("data-faults") == "1"
    assert not cells(b, "gw-a")["state"].find_elements(By.CSS_SELECTOR, ".fault-mark")
    drawn = b.find_element(By.CSS_SELECTOR, "#topology g.gw[data-gateway='gw-b']")
    assert "faulted" in drawn.get_attribute("class") and drawn.get_attribute("data-faults") == "1"
    assert drawn.find_element(By.CSS_SELECTOR, ".fault-mark").text.startswith("\u26a0")
    plain = b.find_element(By.CSS_SELECTOR, "#topology g.gw[data-gateway='gw-a']")
    assert "faulted" not in plain.get_attribute("class")


def test_degraded_has_its_own_colour(console: Console) -> None:
    b = console.browser
    vsa = "#attachments tr[data-network='cust-42'][data-group='vsa']"
    row = wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, vsa), "vsa's attachment")[0]
    assert row.get_attribute("data-status") == "degraded"  # gw-c, a peer, is unreachable
    cell = row.find_element(By.CSS_SELECTOR, "td.state")
    shown = b.execute_script("return getComputedStyle(arguments[0]).color", cell)
    probe = ("const e = document.createElement('td'); e.className = 'state ' + arguments[0]; document.body.append(e);"
             "const c = getComputedStyle(e).color; e.remove(); return c;")
    colours = {s: b.execute_script(probe, s) for s in ("degraded", "held", "failed", "pending", "realized", "unknown")}
    assert shown == colours["degraded"]
    assert len(set(colours.values())) == len(colours), colours  # held has its own too
    # in the drawing, each silo's pill of cust-42 has its attachments' status: gw-c's silo failed (unreachable),
    # gw-b's too (the foreign binding on p1/2100), vsa's only degraded
    pills = {p.get_attribute("data-silo"): p.get_attribute("data-state")
             for p in b.find_elements(By.CSS_SELECTOR, "#topology g.net[data-network='cust-42'] .vlan-pill")}
    assert pills == {"baremetal-c": "failed", "kvm-b": "failed", "vsphere-a": "degraded"}, pills


BOXES = """
const box = (e) => { const r = e.getBoundingClientRect(); return {x0: r.left, x1: r.right, y0: r.top, y1: r.bottom}; };
const meet = (a, b) => a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5;
const host = document.getElementById('topology'), card = host.closest('.card');
const texts = [...host.querySelectorAll('text')].filter((t) => !t.closest('.vlan-pill'));
const lines = [...host.querySelectorAll('line.net-line, line.net-leader')];
const out = {scroll: [card.scrollWidth, card.clientWidth, document.documentElement.scrollWidth, innerWidth],
             textOverText: [], textOverLine: [], pillTextOutside: []};
texts.forEach((a, i) => texts.slice(i + 1).forEach((b) => {
  if (meet(box(a), box(b))) out.textOverText.push([a.textContent, b.textContent]); }));
for (const t of texts) for (const l of lines) if (meet(box(t), box(l))) out.textOverLine.push(t.textContent);
for (const p of host.querySelectorAll('.vlan-pill')) {
  const r = box(p.querySelector('rect')), t = box(p.querySelector('text'));
  if (t.x0 < r.x0 || t.x1 > r.x1 || t.y0 < r.y0 || t.y1 > r.y1) out.pillTextOutside.push(p.textContent);
}
return out;
"""


def test_seven_silos_fit_1400px_and_no_label_lies_over_a_line(console: Console) -> None:
    b = console.browser
    wait(b, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#topology g.silo")) == 7, "seven silos")
    found = b.execute_script(BOXES)
    card, card_view, page, window = found["scroll"]
    assert card <= card_view and page <= window, found["scroll"]  # no horizontal scrolling
    assert found["textOverText"] == [] and found["textOverLine"] == [] and found["pillTextOutside"] == [], found
    # every silo reached has its pill, whatever its labels' length: cut names keep their full text as a title
    pills = b.find_elements(By.CSS_SELECTOR, "#topology g.net[data-network='shop-prod'] .vlan-pill")
    assert len(pills) == 4
    titles = [p.find_element(By.TAG_NAME, "title").get_attribute("textContent") for p in pills]
    assert any(t.startswith("dc-core-with-a-long-name: rack-dc-core-with-a-long-name 110 (") for t in titles), titles
    b.find_element(By.ID, "panel-topology").screenshot(str(Path(console.server.dir) / "topology-1400.png"))
