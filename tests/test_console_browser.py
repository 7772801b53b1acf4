"""The console in a real headless Chromium, against `twilio-events run --console` on 127.0.0.1.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them): without them these tests fail,
saying so. Screenshots are saved under tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEADLINE, TOKEN, Process, free_port, wait_for

ARTIFACTS = Path(__file__).parent / "artifacts"
APP = Path(__file__).parent / "apps" / "console_app.py"
COMMAND = [str(Path(sys.executable).parent / "twilio-events")]
MISSING = (
    "the console's browser tests need Chromium and its driver: apt-get install chromium chromium-driver "
    "(as root; .ci/run does it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium driven through chromium-driver; fails (never skips) when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail(f"{MISSING}: found chromium={chromium}, chromedriver={driver_path}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(DEADLINE)
    try:
        yield driver
    finally:
        driver.quit()


def serve(tmp_path: Path, **env: str) -> tuple[Process, str]:
    """`twilio-events run tests/apps/console_app.py --console` on a free port; its base URL."""
    port = free_port()
    args = ["-m", "twilio_events", "run", str(APP), "--console", "--host", "127.0.0.1", "--port", str(port)]
    process = Process(args, tmp_path, {"TWILIO_AUTH_TOKEN": TOKEN, **env})
    process.wait_for_stderr("Uvicorn running on")
    url = f"http://127.0.0.1:{port}/"
    assert f"Live console (this machine only): {url}console/" in process.stdout_path.read_text()
    return process, url


def simulate(url: str, *options: str) -> None:
    """`twilio-events simulate call --lifecycle` against the service, signed with its token."""
    result = subprocess.run(
        [*COMMAND, "simulate", "call", "--lifecycle", "--url", url, *options],
        env={**os.environ, "TWILIO_AUTH_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def until(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    """What `condition(driver)` returns once it is truthy; fails with `what` after the deadline."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, DEADLINE, poll_frequency=0.1).until(condition)
    except TimeoutException:
        screenshot(driver, "failure")
        pytest.fail(f"the console never showed {what}")


def rows(driver: Any, selector: str = "#callbacks tbody tr") -> list[Any]:
    from selenium.webdriver.common.by import By

    found: list[Any] = driver.find_elements(By.CSS_SELECTOR, selector)
    return found


def cells(row: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def outcomes(driver: Any) -> list[str]:
    """The outcome of every listed callback, newest first."""
    return [cells(row)[7] for row in rows(driver)]


def screenshot(driver: Any, name: str) -> Path:
    """Save the page as tests/artifacts/console-NAME.png and say where."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_live_rows_timeline_and_replay(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    process, url = serve(tmp_path)
    try:
        browser.get(url + "console/")
        until(browser, lambda d: d.find_element(By.ID, "live").text == "live", "that it polls")
        assert rows(browser) == []

        simulate(url)
        until(browser, lambda d: len(rows(d)) == 4, "the four callbacks of the call, without a reload")
        newest = cells(rows(browser)[0])
        assert newest[2:4] == ["call", "completed"]
        assert newest[5] == "accepted (primary auth token)"
        assert newest[6] == "call_completed()"
        assert newest[7] == "handled"
        sid = newest[4]

        rows(browser)[0].find_element(By.CSS_SELECTOR, "td.sid button").click()
        until(browser, lambda d: len(rows(d, "#timeline-rows tr")) == 4, "the call's timeline")
        timeline = rows(browser, "#timeline-rows tr")
        assert browser.find_element(By.ID, "timeline-sid").text == sid
        assert [cells(row)[3] for row in timeline] == ["initiated", "ringing", "in-progress", "completed"]

        rows(browser)[0].click()  # the completed callback's parameters and answer
        until(browser, lambda d: d.find_element(By.ID, "detail").is_displayed(), "the callback's details")
        params = browser.find_element(By.ID, "detail-params").text
        assert "CallStatus completed" in params and sid in params
        assert "<Response/>" in browser.find_element(By.ID, "detail-response").text
        first_id = rows(browser)[0].get_attribute("data-id")

        browser.find_element(By.ID, "replay-new").click()
        until(browser, lambda d: len(rows(d)) == 5, "the replayed callback's row")
        replayed = cells(rows(browser)[0])
        assert (replayed[7], replayed[9]) == ("handled", f"replay of {first_id}")
        assert "(new)" in browser.find_element(By.ID, "replay-result").text

        browser.find_element(By.ID, "replay-same").click()
        until(browser, lambda d: len(rows(d)) == 6, "the second replay's row")
        assert cells(rows(browser)[0])[7] == "duplicate"
        until(browser, lambda d: len(rows(d, "#timeline-rows tr")) == 6, "the replays in the timeline")
        marks = [cells(row)[6] for row in rows(browser, "#timeline-rows tr")]
        assert marks[-2:] == ["repeat", "duplicate"]
        screenshot(browser, "inline")
        assert TOKEN not in browser.page_source
    finally:
        process.kill()


def test_a_dead_letter_retried_from_the_page(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    store = f"sqlite:///{tmp_path / 'events.db'}"
    process, url = serve(tmp_path, CONSOLE_APP_STORE=store)
    try:
        browser.get(url + "console/")
        until(browser, lambda d: d.find_element(By.ID, "inbox").is_displayed(), "the durable inbox")
        simulate(url)
        until(browser, lambda d: len(rows(d)) == 4, "the four callbacks")
        dead = until(browser, lambda d: rows(d, "#dead tbody tr"), "the dead letter")
        until(browser, lambda d: outcomes(d) == ["dead letter", "handled", "handled", "handled"], "outcomes")
        assert "RuntimeError: the CRM did not answer" in cells(dead[0])[5]
        assert "dead 1" in browser.find_element(By.ID, "inbox-counts").text
        screenshot(browser, "durable-dead-letter")

        dead[0].find_element(By.CSS_SELECTOR, "button.retry").click()
        until(browser, lambda d: "queued again" in d.find_element(By.ID, "inbox-result").text, "the retry")
        until(browser, lambda d: not rows(d, "#dead tbody tr"), "no dead letter left")
        wait_for(lambda: "completed after" in process.stdout_path.read_text(), "the retried handler's line")
        until(browser, lambda d: "dead 0" in d.find_element(By.ID, "inbox-counts").text, "dead 0")
        until(browser, lambda d: outcomes(d) == ["handled"] * 4, "the retried callback handled")
        screenshot(browser, "durable-retried")
    finally:
        process.kill()
