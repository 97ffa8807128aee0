"""The DAG list and the grid in a real headless Chromium exactly 1280 px wide: no horizontal
page overflow, and every state readable as text (a cell's letters and its accessible name,
the legend's words), not by colour alone. The browser logs in through the form (with its
login CSRF token). Debian's ``chromium`` and ``chromium-driver``; nothing is downloaded."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpipe.scheduler.runs import record_dags
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.web.accounts import create_user
from mlpipe.web.views.states import ABBREVIATIONS, label

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DAGS = Path(__file__).resolve().parents[2] / "dags"
WIDTH = 1280
PASSWORD = "viewer-password-1280"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed "
                              "(make install installs them)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server over ``pages_demo`` (groups, mapped tasks) and ``gaps_demo`` (a dataset
    schedule, a rescheduled sensor) with a full grid page of runs in several states."""
    from mlpipe.scheduler.scheduler_job import Scheduler
    from mlpipe.web.app import create_app

    tmp = tmp_path_factory.mktemp("layout")
    (tmp / "dags").mkdir()
    for source in (DAGS / "web_pages" / "pages_demo.py", DAGS / "web_gaps" / "gaps_demo.py"):
        shutil.copy(source, tmp / "dags" / source.name)
    settings = load_settings(home=tmp / "home", dags_folder=tmp / "dags", executor="local",
                             parallelism=2, task_lease_s=5)
    engine = Engine.from_settings(settings)
    dags = {d: engine.get_dag(d) for d in ("pages_demo", "gaps_ingest", "gaps_train",
                                           "gaps_sensor")}
    record_dags(engine.store, dags.values(), paused_by_default=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_CONN_WEB_SECRET", "http://u:pw-1280@x.invalid")
        done = engine.trigger(dags["pages_demo"], conf={"epochs": 3}).run_id
        assert engine.run(dags["pages_demo"], done).state == "success"
    for day in range(1, 26):  # a full grid page: queued runs beside the finished one
        engine.trigger(dags["pages_demo"], run_id=f"queued_{day:02d}",
                       logical_date=f"2020-01-{day:02d}")
    engine.store.set_paused("pages_demo", True)  # its queued runs stay queued
    sensor = engine.trigger(dags["gaps_sensor"]).run_id

    def sensor_waits(_: Scheduler) -> bool:
        return engine.store.list_tis("gaps_sensor", sensor)[0].state == "up_for_reschedule"

    Scheduler(engine, scan_interval=0.2).run(until=sensor_waits)
    app = create_app(settings)
    create_user(app.state.store, "viewer", "viewer", PASSWORD)
    url, server, thread = _serve(app)
    try:
        yield {"url": url, "engine": engine, "tmp": tmp}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.store.dispose()


def _serve(app: Any) -> tuple[str, Any, Any]:
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


@pytest.fixture(scope="module")
def chrome(site: dict[str, Any]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WIDTH},900", "--no-first-run", "--disable-extensions",
                 "--hide-scrollbars", f"--user-data-dir={site['tmp'] / 'chromium-profile'}"):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                                  options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _until(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _log_in(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/dags")
    driver.find_element(By.ID, "username").send_keys("viewer")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    _until(lambda: driver.find_element(By.ID, "dag-list"), "the DAG list")


def _no_overflow(driver: Any, page: str) -> None:
    width = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert width == WIDTH, f"the window is {width} px wide, not {WIDTH}"
    assert scroll <= WIDTH, f"{page} overflows: scrollWidth {scroll} > {WIDTH}"


def _readable_states(driver: Any) -> list[str]:
    """Every shown state badge's data-state, after checking its visible text is its name
    and fits its box (read in one script: htmx may swap a live page meanwhile)."""
    badges = driver.execute_script(
        "return Array.from(document.querySelectorAll('span.state[data-state]'))"
        ".filter(e => e.checkVisibility()).map(e => [e.dataset.state, e.innerText,"
        " e.scrollWidth <= e.clientWidth + 1])")
    for state, text, fits in badges:
        assert text == label(state), (state, text)
        assert fits, f"the name of {state} is clipped"
    return [state for state, _, _ in badges]


def test_the_dag_list_fits_1280_px_and_says_each_state(site: dict[str, Any],
                                                       chrome: Any) -> None:
    from selenium.webdriver.common.by import By

    _log_in(chrome, site["url"])
    chrome.get(site["url"] + "/dags")
    _no_overflow(chrome, "the DAG list")
    states = _readable_states(chrome)
    assert {"queued", "running"} <= set(states)  # pages_demo and gaps_sensor
    row = chrome.find_element(By.CSS_SELECTOR, 'tr[data-dag-id="gaps_train"]')
    assert "datasets: s3://lake/raw/ and s3://lake/labels/" in row.text
    chrome.save_screenshot(str(site["tmp"] / "dag-list-1280.png"))


def test_the_grid_fits_1280_px_and_each_cell_says_its_state(site: dict[str, Any],
                                                            chrome: Any) -> None:
    from selenium.webdriver.common.by import By

    for dag_id in ("pages_demo", "gaps_sensor"):
        chrome.get(f"{site['url']}/dags/{dag_id}/grid")
        _until(lambda: chrome.find_element(By.ID, "grid-table"), "the grid")
        _no_overflow(chrome, f"the grid of {dag_id}")
        cells = chrome.execute_script(
            "return Array.from(document.querySelectorAll('a.cell[data-state]')).map(e => "
            "[e.dataset.state, e.getAttribute('aria-label'), e.title,"
            " e.querySelector('.abbr').innerText])")
        assert cells
        for state, name, title, shown in cells:
            assert name.endswith(" " + label(state)) and label(state) in title
            assert shown == ABBREVIATIONS[state], (state, shown)
        legend = _readable_states(chrome)
        assert {"up_for_reschedule", "up_for_retry", "upstream_failed"} <= set(legend)
        chrome.save_screenshot(str(site["tmp"] / f"grid-{dag_id}-1280.png"))
    waiting = chrome.execute_script(
        "const e = document.querySelector('a.cell[data-state=\"up_for_reschedule\"]');"
        "return [e.querySelector('.abbr').innerText, getComputedStyle(e).backgroundColor]")
    assert waiting[0] == "RS"
    swatches = chrome.execute_script(
        "return Array.from(document.querySelectorAll('.legend [data-state]')).map("
        "e => [e.dataset.state, getComputedStyle(e).getPropertyValue('--swatch').trim()])")
    colours = dict(swatches)
    assert len(set(colours.values())) == len(colours)  # every state its own colour
    assert waiting[1] == "rgb(53, 183, 196)"
    assert colours["up_for_reschedule"] == "#35b7c4"
