"""The HTML report in headless Chromium: no console errors, every image and link resolves,
tables sort, the ledger comes first; screenshots are kept in test-artifacts/.

Needs Debian's chromium and chromium-driver (`make test` installs them when run as root).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMIUM).exists() and Path(DRIVER).exists(), (
        "install Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver) to run the browser test"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.mark.browser
@pytest.mark.e2e
def test_report_renders_cleanly_in_chromium(browser, smoke_project):
    report = smoke_project / "reports/smoke/report.html"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.set_window_size(1366, 900)
    browser.get(report.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images and all(images)
    broken = browser.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
        ".filter(h => !(h.startsWith('#') && document.getElementById(h.slice(1))))"
    )
    assert broken == []
    first_section = browser.execute_script("return document.querySelector('h2').id")
    assert first_section == "summary"  # the reproduction summary opens the report
    browser.save_screenshot(str(ARTIFACTS / "report-laptop.png"))

    first_cell = "return document.querySelector('table.ledger tbody tr td').textContent"
    before = browser.execute_script(first_cell)
    browser.execute_script("document.querySelector('table.ledger th').click()")
    browser.execute_script("document.querySelector('table.ledger th').click()")
    assert browser.execute_script(first_cell) != before  # descending sort moved a row up

    browser.set_window_size(390, 844)  # a phone
    browser.get(report.as_uri())
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    wide = browser.execute_script(
        "return Array.from(document.body.querySelectorAll('*')).filter(e => "
        "e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert overflow <= 1, f"the page scrolls sideways on a phone: {wide}"
    browser.save_screenshot(str(ARTIFACTS / "report-phone.png"))
    shutil.copy(report, ARTIFACTS / "report.html")
