"""The product as a person sees it: Debian's Chromium, driven by Selenium through the system
chromedriver, against gunicorn with DEBUG off. Opens the status page, logs into the admin,
replays a dead letter into InfluxDB; the admin's CSS must apply and the charts must draw.

Screenshots go to the test's data directory and, when TEST_SCREENSHOT_DIR is set (`make test`
sets .data/screenshots), there too for people to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.helpers import ROOT, TEST_INFLUX_URL, migrate, service_env, wait_until
from tests.services import free_port

pytestmark = pytest.mark.services

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USERNAME, PASSWORD = "operator", "browser-test-password-0123"
# Debian's chromium without a network: nothing of Google's may be contacted or updated.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
# 2026-01-05 12:00:00 UTC: the dead letter's event time, which its replay writes to InfluxDB.
EVENT_NS = 1_767_614_400_000_000_000
SEED = f"""
from datetime import timedelta
from django.utils import timezone
from events.contract import state_event
from ingestor_project.models import StatusSample
from tasks import deadletters
from tasks.models import Category
event = state_event("homeassistant", "sensor.browser_test", "21.5", {{}}, {EVENT_NS})
deadletters.record_events([event], category=Category.TRANSIENT, error="unreachable",
                          batch_id="browser-1")
now = timezone.now()
for i, total in enumerate([0, 300, 900, 1200]):
    StatusSample.objects.create(bucket=int(now.timestamp() // 10) - 4 + i,
        taken_at=now - timedelta(seconds=40 - 10 * i),
        totals={{"received": total, "written": total, "lag_sum": total / 10,
                 "lag_count": total}})
"""


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=180)


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def site(influx, ingest_queue, postgres_url, processes, tmp_path) -> Iterator[str]:
    """gunicorn with DEBUG off on a database of its own, an admin user and one dead letter."""
    env = service_env(
        DEBUG="false",
        DATABASE_URL=postgres_url,
        DATA_DIR=str(tmp_path),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        CELERY_INGEST_QUEUE=ingest_queue,
        CELERY_MAINTENANCE_QUEUE=ingest_queue + "-m",
        INFLUX_URL=TEST_INFLUX_URL,
        INFLUX_DATABASE=influx.database,
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="operator@example.org",
    )
    migrate(env)
    _manage(env, "collectstatic", "--noinput", "-v", "0")
    _manage(env, "createsuperuser", "--noinput")
    _manage(env, "shell", "-c", SEED)
    port = free_port()
    processes.web("web", env, port)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(f"{url}/health"), 60, "gunicorn to answer /health")
    yield url


@pytest.fixture
def browser(tmp_path) -> Iterator:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `make test` installs Debian's chromium and "
            "chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # Both paths given: Selenium Manager has nothing to look up or download.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class Screenshots:
    def __init__(self, driver, directory: Path) -> None:
        self.driver, self.directory = driver, directory
        directory.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get("TEST_SCREENSHOT_DIR")
        self.extra = Path(extra) if extra else None

    def take(self, name: str) -> None:
        path = self.directory / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot {path}"
        if self.extra:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.extra / path.name)


def _background(driver, selector: str) -> str:
    return driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", selector
    )


def test_an_operator_sees_the_status_page_logs_in_and_replays_a_dead_letter(
    site, browser, influx, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shots = Screenshots(browser, tmp_path / "screenshots")
    browser.get(f"{site}/")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart-svg")
    assert len(charts) == 3
    for svg in charts:
        assert svg.size["width"] > 0 and svg.size["height"] > 0, svg.size
    lines = browser.find_elements(By.CSS_SELECTOR, "svg.chart-svg polyline")
    widths = [browser.execute_script("return arguments[0].getBBox().width", p) for p in lines]
    assert widths and max(widths) > 0, "no chart line drawn"
    # The page's own stylesheet came through the static files: a coloured header.
    assert _background(browser, "header") == "rgb(38, 75, 93)"
    shots.take("status")

    browser.get(f"{site}/admin/")
    browser.find_element(By.NAME, "username").send_keys(USERNAME)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_until(lambda: "Site administration" in browser.title, 30, "the admin index")
    # Django's admin CSS is applied (unstyled, the header has no background at all).
    assert _background(browser, "#header") not in ("rgba(0, 0, 0, 0)", "transparent", "")
    shots.take("admin")

    browser.get(f"{site}/admin/tasks/failedwrite/")
    assert "sensor.browser_test" in browser.find_element(By.ID, "result_list").text
    shots.take("dead-letters")
    browser.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("replay")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "ul.messagelist li"), 30, "a message"
    )
    assert "1 replayed, 0 failed again" in message[0].text
    shots.take("replayed")
    (point,) = wait_until(influx.points, 30, "the replayed point in InfluxDB")
    assert point["entity_id"] == "browser_test" and point["time"] == EVENT_NS
