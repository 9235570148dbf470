"""The IOC's live web page (softioc/_web/page.html at ``GET /``, rows streamed
at ``/events`` by softioc.http), in a real browser: Playwright driving
Debian's Chromium (``apt-get install chromium``, ``pip install playwright``;
no ``playwright install``).  Screenshots go to ``$PYTHONIOC_ARTEFACTS`` if set."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from softioc.testing import IOCProcess, free_port, wait_until

from .conftest import IOCS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# CI installs Chromium and sets PYTHONIOC_REQUIRE_BROWSER=1: there a missing
# browser fails the test instead of skipping it.
if not os.path.exists(CHROMIUM) and not os.environ.get("PYTHONIOC_REQUIRE_BROWSER"):
    pytest.skip("no Chromium (apt-get install chromium)", allow_module_level=True)
from playwright import sync_api  # noqa: E402  (the test extra has it)

MAJOR_RED = "rgb(215, 25, 28)"      # --major-bg in page.html


def artefact(tmp_path: Path, name: str) -> Path:
    where = Path(os.environ.get("PYTHONIOC_ARTEFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where / name


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def serve(port: int) -> IOCProcess:
    ioc = IOCProcess([str(IOCS / "page_ioc.py")], wait_for="PG:TEMP",
                     env={"PYTHONIOC_HTTP": f"127.0.0.1:{port}"})
    wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 15, what="the HTTP server")
    return ioc


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[IOCProcess, str]]:
    port = free_port()
    with serve(port) as ioc:
        yield ioc, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Any, url: str, width: int = 1100, height: int = 700) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    page.wait_for_selector('tr[data-name="PG:TEMP"]', timeout=15000)
    return page


def cell(name: str, kind: str) -> str:
    return f'tr[data-name="{name}"] td.{kind}'


def text_is(page: Any, selector: str, expected: str, timeout: float = 10000) -> None:
    page.wait_for_function("([s, t]) => document.querySelector(s)?.textContent === t",
                           arg=[selector, expected], timeout=timeout)


def test_live_values_and_alarms(served: tuple[IOCProcess, str], browser: Any,
                                tmp_path: Path) -> None:
    ioc, url = served
    page = open_page(browser, url)
    assert page.inner_text(cell("PG:TEMP", "value")) == "21.37"
    assert page.inner_text(cell("PG:TEMP", "units")) == "degC"
    assert page.inner_text(cell("PG:CAMERA", "value")) == "640x480 mono8"
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", page.inner_text(cell("PG:TEMP", "time")))
    assert page.inner_text(cell("PG:TEMP", "severity")) == "NO_ALARM"
    text_is(page, cell("PG:CURRENT", "severity"), "MINOR")
    page.wait_for_timeout(300)      # the flash of a changed value fades
    page.screenshot(path=str(artefact(tmp_path, "live-page.png")))

    # No reload and no polling: a marker set on the window survives, and the
    # page asks the server for nothing more while values change.
    page.evaluate("window.__noReload = 1")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    ioc.caput("PG:SET", "3.5")      # the row changes in place
    text_is(page, cell("PG:SET", "value"), "3.500")
    ioc.caput("PG:SET", "12")
    text_is(page, cell("PG:SET", "severity"), "MAJOR")
    severity = page.locator(cell("PG:SET", "severity"))
    assert severity.get_attribute("data-severity") == "2"
    assert "alarm-major" in (severity.get_attribute("class") or "").split()
    assert severity.evaluate("e => getComputedStyle(e).backgroundColor") == MAJOR_RED
    assert page.inner_text(cell("PG:SET", "status")) == "HIHI"
    ioc.caput("PG:SET", "1")
    text_is(page, cell("PG:SET", "severity"), "NO_ALARM")
    assert page.evaluate("window.__noReload") == 1
    assert requests == []
    assert page.errors == []


def test_filter_hides_rows(served: tuple[IOCProcess, str], browser: Any) -> None:
    _, url = served
    page = open_page(browser, url)

    def visible() -> list[str]:
        return list(page.eval_on_selector_all(
            "tr[data-name]", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.name)"))

    everything = visible()
    assert {"PG:TEMP", "PG:SET", "PG:CAMERA"} <= set(everything)
    page.fill("#filter", "temp")                    # a substring, any case
    assert visible() == ["PG:TEMP"]
    page.fill("#filter", "PG:*T")                   # a glob
    assert visible() == ["PG:CURRENT", "PG:SET"]
    page.fill("#filter", "pg:?et")
    assert visible() == ["PG:SET"]
    page.fill("#filter", "")
    assert visible() == everything
    page.check("#alarms")                           # in alarm only
    assert set(visible()) == {"PG:CURRENT", "PG:FLOW"}


def test_phone_viewport(served: tuple[IOCProcess, str], browser: Any, tmp_path: Path) -> None:
    ioc, url = served
    page = open_page(browser, url, 360, 740)
    # nothing wider than the screen, text readable
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.locator(cell("PG:TEMP", "value")).bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
    size = page.locator(cell("PG:TEMP", "value")).evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 14
    ioc.caput("PG:SET", "2")
    text_is(page, cell("PG:SET", "value"), "2.000")
    page.screenshot(path=str(artefact(tmp_path, "live-page-phone.png")))


def test_disconnected_banner(browser: Any) -> None:
    port = free_port()
    ioc = serve(port)
    try:
        page = open_page(browser, f"http://127.0.0.1:{port}/")
        assert not page.is_visible("#banner")
    finally:
        ioc.stop()
    page.wait_for_selector("#banner", state="visible", timeout=15000)
    assert "isconnected" in page.inner_text("#banner")
