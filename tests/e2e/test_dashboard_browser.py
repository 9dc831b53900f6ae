"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium): traffic
appears live without a reload, an unmatched request opens to its near miss with the differing field marked, and
the copied stub, programmed back with the Python client, makes the same request match. Screenshots are saved
under tests/artifacts/ (git-ignored) for a person to look at.

Without chromium the test skips locally and fails under CI=true, where .ci/run installs it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulatord_client import Simulator
from simulatord_client.embedded import EmbeddedDaemon

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
IN_CI = os.environ.get("CI", "").lower() == "true"
WAIT_S = 10


@pytest.fixture
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if IN_CI:
            pytest.fail("chromium and chromium-driver are not installed (.ci/run installs them with apt-get)")
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    # The executable named: selenium then never tries to download a driver (CI may have no internet).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_dashboard_follows_traffic_live_and_its_copied_stub_matches(
    browser: object, daemon: EmbeddedDaemon
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    wait = WebDriverWait(browser, WAIT_S)

    def row(sequence: int) -> object:
        return wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f'#exchanges tr[data-sequence="{sequence}"]'))
        )

    ARTIFACTS.mkdir(exist_ok=True)
    with Simulator(daemon.grpc_address) as sim, sim.session(tenant="dashboard-e2e", labels={"test": "browser"}) as s:
        s.stub("GET", "/v1/orders", json={"orders": []})
        browser.get(daemon.http_url + "/")
        link = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f'a.session[data-name="{s.name}"]')))
        link.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "live"), "live"))
        browser.execute_script("window.notReloaded = true")

        # Traffic sent now reaches the open page by itself.
        assert httpx.get(s.url + "/v1/orders").status_code == 200
        assert "matched" in row(1).text
        body = {"sku": "A-1", "qty": 2}
        assert httpx.post(s.url + "/v1/orders", params={"page": "2"}, json=body).status_code == 404
        unmatched = row(2)
        assert "unmatched" in unmatched.text and "/v1/orders?page=2" in unmatched.text
        assert browser.execute_script("return window.notReloaded") is True

        # The near miss: the GET stub missed on the method, and the request's method row is marked.
        unmatched.click()
        field = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".near-miss td.field.differs")))
        assert field.text == "method"
        marked = browser.find_element(By.CSS_SELECTOR, '#request tr[data-field="method"]')
        assert "differs" in marked.get_attribute("class")
        assert marked.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        assert browser.find_element(By.CSS_SELECTOR, '#request tr[data-field="path"]').get_attribute("class") in (
            None,
            "",
        )
        browser.save_screenshot(str(ARTIFACTS / "dashboard-near-miss.png"))

        # Copy as stub (Python), run it with the client, resend: now it matches, and the page says so live.
        browser.find_element(By.ID, "copy-stub-python").click()
        copied = wait.until(ec.visibility_of_element_located((By.ID, "copied"))).text
        assert copied.startswith("s.stub('POST', '/v1/orders', query={'page': '2'}, json_body=")
        exec(copied, {"s": s})
        assert httpx.post(s.url + "/v1/orders", params={"page": "2"}, json=body).status_code == 200
        assert "matched" in row(3).text and "unmatched" not in row(3).text
        # The stub table follows too: the new stub has matched once.
        wait.until(
            lambda _: any(
                cell.text.startswith("1")
                for cell in browser.find_elements(By.CSS_SELECTOR, "#stubs tr td.match-count")
                if "POST" in cell.find_element(By.XPATH, "..").text
            )
        )
        row(3).click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), "#3"))
        browser.find_element(By.ID, "copy-stub-json").click()
        assert '"json_equals"' in wait.until(ec.visibility_of_element_located((By.ID, "copied"))).text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-matched.png"))
        print(f"screenshots: {ARTIFACTS}/dashboard-near-miss.png, {ARTIFACTS}/dashboard-matched.png")
