"""The web UI in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium with the driver's path given, so nothing is downloaded), against a real
uvicorn server and a real ``mlpipe scheduler`` process running the triggered run.

An op logs in through the form, sees the DAG, triggers it with a param, watches the grid
turn green (htmx refreshes it), reads a running task's log as it grows and then a finished
one's, clears a task (the confirmation lists it and its downstream), and logs out. A viewer
sees no trigger button, and the server refuses them (403).

With ``WEBUI_SCREENSHOTS_DIR=docs/img`` the main pages are saved there as PNGs (what
``benchmarks/tools/screenshots.py`` runs); otherwise into the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mlpipe.scheduler.runs import record_dags
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.web.accounts import create_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEMO_DAG = Path(__file__).resolve().parents[2] / "dags" / "web_pages" / "pages_demo.py"
SECRET = "s3cr3t-browser-password"
PASSWORDS = {"op": "op-password-1", "viewer": "viewer-password-1"}
WAIT_S = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed "
                              "(make install installs them)"),
]


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
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Web server + scheduler process on one SQLite database, with an op and a viewer
    (shared by this module's tests: starting them and Chromium takes seconds)."""
    from mlpipe.web.app import create_app

    tmp_path = tmp_path_factory.mktemp("browser")
    (tmp_path / "dags").mkdir()
    shutil.copy(DEMO_DAG, tmp_path / "dags" / DEMO_DAG.name)
    gate = tmp_path / "gate"
    env = {**os.environ, "MLPIPE_HOME": str(tmp_path / "home"),
           "MLPIPE_DAGS_FOLDER": str(tmp_path / "dags"), "MLPIPE_EXECUTOR": "local",
           "MLPIPE_PARALLELISM": "2", "MLPIPE_CONN_WEB_SECRET": f"http://u:{SECRET}@x.invalid",
           "PAGES_DEMO_GATE": str(gate), "MLFLOW_DISABLE_TELEMETRY": "true"}
    settings = load_settings(home=tmp_path / "home", dags_folder=tmp_path / "dags")
    engine = Engine.from_settings(settings)
    record_dags(engine.store, [engine.get_dag("pages_demo")], paused_by_default=False)
    app = create_app(settings)
    for name, password in PASSWORDS.items():
        create_user(app.state.store, name, name, password)
    url, server, thread = _serve(app)
    scheduler = subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler"], env=env,
                                 cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "scheduler.log", "wb"))  # noqa: SIM115
    try:
        yield {"url": url, "engine": engine, "gate": gate, "tmp": tmp_path}
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()
        server.should_exit = True
        thread.join(timeout=10)
        engine.store.dispose()


@pytest.fixture(scope="module")
def chrome(site: dict[str, Any]) -> Iterator[Any]:
    """Headless Chromium at a laptop's 1366x768, through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1366,768", "--no-first-run", "--disable-extensions",
                 f"--user-data-dir={site['tmp'] / 'chromium-profile'}"):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as patch:
        # both paths are given, so Selenium Manager has nothing to find; offline regardless
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                                  options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WEBUI_SCREENSHOTS_DIR") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _until(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll ``condition`` until it returns something truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # the page is being swapped by htmx: try again
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _log_in(driver: Any, url: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/dags")
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "login").click()
    _until(lambda: driver.find_element(By.ID, "dag-list"), "the DAG list")


def _text(driver: Any, by: str, value: str) -> str:
    return str(driver.find_element(by, value).text)


def test_an_op_triggers_watches_reads_logs_clears_and_logs_out(
        site: dict[str, Any], chrome: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, store, shots = site["url"], site["engine"].store, _shots_dir(tmp_path)
    _log_in(chrome, url, "op")
    assert "pages_demo" in _text(chrome, By.ID, "dag-list")

    chrome.find_element(By.CSS_SELECTOR, 'a[href="/dags/pages_demo/trigger"]').click()
    epochs = _until(lambda: chrome.find_element(By.ID, "param-epochs"), "the trigger form")
    epochs.clear()
    epochs.send_keys("4")
    chrome.save_screenshot(str(shots / "trigger-form.png"))
    chrome.find_element(By.ID, "trigger-submit").click()
    _until(lambda: "/grid?triggered=" in chrome.current_url, "the grid after triggering")
    [run] = store.list_runs("pages_demo")
    assert run.conf["epochs"] == 4

    # the gate holds wait_for_gate running: its log grows on the page while we watch
    _until(lambda: _state(store, run.run_id, "wait_for_gate") == "running",
           "wait_for_gate to run")
    chrome.get(f"{url}/dags/pages_demo/runs/{run.run_id}/tasks/wait_for_gate")
    first = _until(lambda: _text(chrome, By.ID, "log").count("waiting for the gate"),
                   "the running task's log")
    _until(lambda: _text(chrome, By.ID, "log").count("waiting for the gate") > first + 3,
           "the live tail to show new lines")
    chrome.save_screenshot(str(shots / "task-log-live.png"))
    chrome.get(f"{url}/dags/pages_demo/grid")  # still running: the grid refreshes itself
    header = f'th[data-run-id="{run.run_id}"] a'
    assert chrome.find_element(By.CSS_SELECTOR, header).get_attribute("title") \
        .endswith(": running")
    chrome.execute_script("window.mlpipeNotReloaded = true")
    site["gate"].write_text("open")
    _until(lambda: chrome.find_element(By.CSS_SELECTOR, header).get_attribute("title")
           .endswith(": success"), "the grid to turn green", timeout=90)
    assert chrome.execute_script("return window.mlpipeNotReloaded") is True  # htmx, no reload
    shard = chrome.find_element(By.CSS_SELECTOR, 'tr[data-node="shard"] .cell-mapped .cell')
    assert "4 success" in shard.get_attribute("title")
    chrome.save_screenshot(str(shots / "grid.png"))
    chrome.get(f"{url}/dags")
    assert chrome.find_element(By.CSS_SELECTOR, '[data-dag-id="pages_demo"] .state').text \
        == "success"
    chrome.save_screenshot(str(shots / "dag-list.png"))
    chrome.get(f"{url}/dags/pages_demo/graph")
    assert chrome.find_element(By.CSS_SELECTOR, 'g[data-task="start"]').get_attribute(
        "data-state") == "success"
    chrome.save_screenshot(str(shots / "graph.png"))

    chrome.get(f"{url}/dags/pages_demo/runs/{run.run_id}/tasks/start")
    log = chrome.find_element(By.ID, "log")
    assert "connecting with password ***" in log.text and SECRET not in chrome.page_source
    coloured = log.find_element(By.CSS_SELECTOR, "span.ansi-fg-green")
    assert coloured.text == "coloured OK"
    chrome.save_screenshot(str(shots / "task-log.png"))

    chrome.get(f"{url}/dags/pages_demo/runs/{run.run_id}/tasks/prep.report")
    chrome.find_element(By.ID, "clear-task").click()
    listed = _until(lambda: chrome.find_elements(By.CSS_SELECTOR, "#affected tr[data-task]"),
                    "the confirmation list")
    assert sorted(r.get_attribute("data-task") for r in listed) == ["prep.report",
                                                                    "wait_for_gate"]
    chrome.find_element(By.ID, "confirm").click()
    _until(lambda: "cleared=2" in chrome.current_url, "the run page after clearing")
    assert "Cleared 2 task instance(s)" in chrome.page_source
    _until(lambda: _state(store, run.run_id, "prep.report") == "success"
           and store.get_run("pages_demo", run.run_id).state == "success",
           "the scheduler to run the cleared tasks again")

    chrome.get(f"{url}/dags/pages_demo/runs/{run.run_id}/tasks/wait_for_gate")
    assert "gate open" in _text(chrome, By.ID, "log") and chrome.find_elements(By.ID, "log-end")

    chrome.get(f"{url}/dags")  # the pause toggle posts through htmx with the CSRF header
    chrome.find_element(By.ID, "pause-pages_demo").click()
    _until(lambda: _text(chrome, By.ID, "pause-pages_demo") == "paused", "the toggle to flip")
    assert store.get_dag("pages_demo").is_paused
    chrome.find_element(By.ID, "pause-pages_demo").click()
    _until(lambda: _text(chrome, By.ID, "pause-pages_demo") == "active", "the toggle back")
    assert not store.get_dag("pages_demo").is_paused

    chrome.find_element(By.ID, "logout").click()
    _until(lambda: "/login" in chrome.current_url, "the login page")
    chrome.get(url + "/dags")
    assert "/login" in chrome.current_url


def _state(store: Any, run_id: str, task_id: str) -> str | None:
    from mlpipe.store.entities import TIKey

    record = store.get_ti(TIKey("pages_demo", run_id, task_id))
    return None if record is None else str(record.state)


def test_a_viewer_sees_no_trigger_button_and_the_server_refuses(
        site: dict[str, Any], chrome: Any) -> None:
    from selenium.webdriver.common.by import By

    url = site["url"]
    runs = len(site["engine"].store.list_runs("pages_demo"))
    chrome.delete_all_cookies()
    _log_in(chrome, url, "viewer")
    assert "pages_demo" in _text(chrome, By.ID, "dag-list")
    assert not chrome.find_elements(By.CSS_SELECTOR, 'a[href="/dags/pages_demo/trigger"]')
    assert not chrome.find_elements(By.CSS_SELECTOR, "button.toggle")
    chrome.get(url + "/dags/pages_demo/trigger")
    assert "this needs" in chrome.page_source and "op" in chrome.page_source
    api = requests.post(url + "/api/v1/dags/pages_demo/dagRuns", json={"conf": {}},
                        auth=("viewer", PASSWORDS["viewer"]), timeout=30)
    assert api.status_code == 403
    assert len(site["engine"].store.list_runs("pages_demo")) == runs
