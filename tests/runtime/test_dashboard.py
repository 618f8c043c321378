"""``/dashboard`` in a real browser: headless Chromium, driven by Selenium, reads the page.

examples/dashboard is served (a TRANSFORMER, an EPSILON_GREEDY router, two MODELs and a
shadow predictor), the test sends traffic and feedback, then reads from the page what a
person would look at: the picture has every node, the router's split matches the requests
sent, the bandit's arms show their values, the shadow's agreement is shown, and clicking a
request opens its waterfall with the nodes it went through.

Screenshots of the page go to the test's folder; with INFERGRAPH_UPDATE_SCREENSHOTS=1 they
replace docs/images/dashboard*.png, which docs/dashboard.md shows. Chromium, chromedriver
and selenium: ``bash scripts/install-services.sh`` and the test dependency group; without
them the test is skipped, unless $CI is set (then it fails).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.dashboard_graph import ROOT, Served, serve
from tests.helpers.procs import http_request

INSTALL = "bash scripts/install-services.sh (chromium, chromium-driver); pip install selenium"
IMAGES = ROOT / "docs" / "images"
WAIT_S = 20.0


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _browser() -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        _missing(f"chromium and chromedriver are not installed; to run this test: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing(f"selenium is not installed; to run this test: {INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1000",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("dashboard-page")) as s:
        yield s


def reward(i: int, branch: int) -> float:
    """The feedback for request ``i``: adder is right two times in three, careful-adder one
    in four, so the bandit's values settle apart and its choice changes on the way."""
    return float(i % 3 != 0) if branch == 0 else float(i % 4 == 0)


def send(served: Served, first: int, count: int, answers: dict[str, Any]) -> None:
    """``count`` predictions, each followed by its feedback."""
    for i in range(first, first + count):
        puid = f"page-{i:02d}"
        status, answer = served.predict([i % 5, 1, 2], puid)
        assert status == 200, answer
        answers[puid] = answer
        branch = answer["meta"]["routing"]["chooser"]
        body = {"reward": reward(i, branch), "response": answer}
        assert http_request(served.http, "POST", "/api/v1.0/feedback", body)[0] == 200


def _wait(browser: Any, condition: Any, what: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition, message=f"waiting for {what}")


READ_PAGE = """
const pick = (css, ...names) => [...document.querySelectorAll(css)].map(e => {
  const out = {text: e.textContent};
  for (const n of names) out[n] = e.getAttribute("data-" + n);
  return out;
});
const shadow = document.querySelector("#shadow");
return {
  updates: Number(document.body.dataset.updates),
  nodes: pick("svg g.node", "node", "type", "calls", "rps", "p50-ms"),
  predictors: pick("svg g.predictor", "predictor", "traffic", "shadow"),
  edges: pick("svg .edge", "from", "to"),
  routes: pick("tr.route", "router", "child", "routes", "share"),
  arms: pick("tr.arm", "router", "child", "pulls", "reward", "value"),
  sparks: document.querySelectorAll("svg.spark polyline").length,
  spark_points: [...document.querySelectorAll("svg.spark")].map(e => e.dataset.points),
  shadow: {agree: shadow.dataset.agree, agreement: shadow.dataset.agreement},
  requests: pick("tr.request", "puid", "path", "status"),
};
"""
"""The page's figures read in one go: it redraws every second, so elements found one call
apart may already have been replaced."""


def _page(browser: Any) -> dict[str, Any]:
    return dict(browser.execute_script(READ_PAGE))


def _screenshot(browser: Any, folder: Path, name: str) -> Path:
    """A picture of the whole page (in ``folder``; in docs/images too, when asked)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1500, max(700, int(height) + 20))
    path = folder / name
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    if os.environ.get("INFERGRAPH_UPDATE_SCREENSHOTS"):
        IMAGES.mkdir(exist_ok=True)
        shutil.copyfile(path, IMAGES / name)
    return path


def test_the_page_shows_the_graph_the_split_the_arms_and_a_trace(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    children = ["adder", "careful-adder"]
    browser.get(f"http://127.0.0.1:{served.http}/dashboard")
    traffic: dict[str, Any] = {}
    for batch in range(4):  # the page redraws between batches: its sparklines see values move
        seen = _page(browser)["updates"] if batch else 0
        _wait(browser, lambda d, n=seen: _page(d)["updates"] > n, "the page's next update")
        send(served, 10 * batch, 10, traffic)
    chosen = Counter(a["meta"]["routing"]["chooser"] for a in traffic.values())
    tries, successes = Counter(), Counter()
    for puid, answer in traffic.items():
        branch = answer["meta"]["routing"]["chooser"]
        tries[branch] += 1
        successes[branch] += int(reward(int(puid[5:]), branch))
    # the shadow runs after each answer: wait until the page has seen all 40 agree
    page = _wait(
        browser,
        lambda d: (p := _page(d))["updates"] >= 1 and p["shadow"]["agree"] == "40" and p,
        "the page to show the shadow's 40 answers",
    )

    # the picture: every node of both predictors, with its type; the predictors' weights
    nodes = {n["node"]: n for n in page["nodes"]}
    assert set(nodes) == {"doubler", "chooser", "adder", "careful-adder", "candidate"}
    assert nodes["doubler"]["type"] == "TRANSFORMER" and nodes["chooser"]["type"] == "ROUTER"
    assert {nodes[n]["type"] for n in ("adder", "careful-adder", "candidate")} == {"MODEL"}
    assert "TRANSFORMER" in nodes["doubler"]["text"] and "rps" in nodes["doubler"]["text"]
    assert nodes["doubler"]["calls"] == "40" and float(nodes["doubler"]["p50-ms"]) > 0
    predictors = {p["predictor"]: p for p in page["predictors"]}
    assert (
        predictors["main"]["traffic"] == "100" and "100% of traffic" in predictors["main"]["text"]
    )
    assert (
        predictors["candidate"]["shadow"] == "true" and "shadow" in predictors["candidate"]["text"]
    )
    edges = {(e["from"], e["to"]) for e in page["edges"]}
    assert {
        ("main", "doubler"),
        ("doubler", "chooser"),
        ("chooser", "adder"),
        ("chooser", "careful-adder"),
        ("candidate", "candidate"),
    } <= edges

    # the router's split is what the answers said the router chose
    routes = {r["child"]: r for r in page["routes"]}
    for branch, child in enumerate(children):
        assert routes[child]["routes"] == str(chosen[branch])
        assert float(routes[child]["share"]) == pytest.approx(chosen[branch] / 40, abs=1e-4)

    # the bandit's arms: pulls, and the value the feedback gave them (successes / tries)
    arms = {a["child"]: a for a in page["arms"]}
    for branch, child in enumerate(children):
        expected = successes[branch] / tries[branch] if tries[branch] else 0.0
        assert arms[child]["pulls"] == str(chosen[branch])
        assert float(arms[child]["reward"]) == successes[branch]
        assert float(arms[child]["value"]) == pytest.approx(expected)
        assert f"{expected:.3f}" in arms[child]["text"]
    assert page["sparks"] == 2
    assert all(int(n) >= 3 for n in page["spark_points"])  # sampled at every redraw
    assert float(page["shadow"]["agreement"]) == 1.0

    _screenshot(browser, tmp_path, "dashboard.png")

    # a request's trace: click it in the list, read the waterfall
    newest = "page-39"
    path = ["doubler", "chooser", children[traffic[newest]["meta"]["routing"]["chooser"]]]
    listed = {r["puid"]: r for r in page["requests"]}
    assert listed[newest]["path"] == " ".join(path) and listed[newest]["status"] == "200"

    def click(driver: Any) -> bool:
        driver.find_element(By.CSS_SELECTOR, f'tr.request[data-puid="{newest}"]').click()
        return True

    _wait(browser, click, f"a click on request {newest}")
    trace = _wait(
        browser,
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#trace").get_attribute("data-puid") == newest
            and d.execute_script(READ_TRACE)
        ),
        f"the trace of {newest}",
    )
    primary, shadow = trace
    assert primary["predictor"] == "main" and shadow["predictor"] == "candidate"
    assert [s["node"] for s in primary["spans"]] == path
    assert [s["method"] for s in primary["spans"]] == ["/transform-input", "/route", "/predict"]
    assert all(float(s["ms"]) > 0 for s in primary["spans"])
    starts = [float(s["start-ms"]) for s in primary["spans"]]
    assert starts == sorted(starts)
    assert [s["node"] for s in shadow["spans"]] == ["candidate"]
    _screenshot(browser, tmp_path, "dashboard-trace.png")


READ_TRACE = """
return [...document.querySelectorAll("#trace .waterfall")].map(w => ({
  predictor: w.dataset.predictor,
  spans: [...w.querySelectorAll("tr.span")].map(s => ({
    node: s.dataset.node, method: s.dataset.method, ms: s.dataset.ms,
    "start-ms": s.dataset.startMs,
  })),
}));
"""
