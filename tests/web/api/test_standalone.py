"""``mlpipe standalone`` and ``mlpipe scheduler --metrics-port`` as real processes: log in
over HTTP with the password shown once, SIGTERM, and no child outlives the command."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

DAGS = Path(__file__).resolve().parents[2] / "dags" / "web_api"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def env_for(home: Path, dags: Path) -> dict[str, str]:
    shutil.copy(DAGS / "api_demo.py", dags)
    return {**os.environ, "MLPIPE_HOME": str(home), "MLPIPE_DAGS_FOLDER": str(dags),
            "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


class Lines:
    """A child's stdout, read on a thread; ``wait_for`` polls it for a pattern."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.text = ""
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.text += line

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in: {self.text}")


def poll(url: str, timeout: float = 90, **kwargs: object) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_mlflow(pid: int, timeout: float = 120) -> None:
    """Until the MLflow UI's own process (``mlflow ui``) runs under ``pid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                if any(part.endswith("mlflow") for part in child.cmdline()[:2]):
                    return
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.2)
    raise AssertionError("mlflow ui never started")


def started_in(home: Path) -> list[int]:
    """Processes alive whose environment names ``home`` as MLPIPE_HOME."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and \
                    process.environ().get("MLPIPE_HOME") == str(home):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_standalone_logs_in_with_the_shown_password_and_ends_every_child(
        tmp_path: Path, isolated_env: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "standalone", "--port", "0",
                             "--ui-port", "0"], env=env_for(isolated_env, dags),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = Lines(proc)
        web_url = out.wait_for(r"web UI:\s+(http://\S+)").group(1)
        ui_url = out.wait_for(r"MLflow UI:\s+(http://\S+)").group(1)
        password = out.wait_for(r"password: (\S+)").group(1)
        assert poll(f"{web_url}/health").status_code == 200
        assert ui_url.startswith("http://127.0.0.1:")
        wait_for_mlflow(proc.pid)

        browser = requests.Session()
        form = browser.get(f"{web_url}/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
        assert token, "the login form has no CSRF token"
        login = browser.post(f"{web_url}/login", data={"username": "admin",
                                                       "password": password,
                                                       "csrf_token": token.group(1)},
                             allow_redirects=False, timeout=10)
        dags_seen = requests.get(f"{web_url}/api/v1/dags", auth=("admin", password), timeout=10)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert login.status_code == 303 and "mlpipe_session=" in login.headers["set-cookie"]
    assert [d["dag_id"] for d in dags_seen.json()["dags"]] == ["api_demo"]
    assert len(children) >= 4  # scheduler, web server, mlpipe ui, mlflow and its workers
    _gone, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], [p.pid for p in alive]
    assert started_in(isolated_env) == []  # nor any process started later with its home
    db = (isolated_env / "mlpipe.db").read_bytes()
    assert password.encode() not in db


def test_the_scheduler_serves_metrics_with_its_loop_time(tmp_path: Path,
                                                          isolated_env: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "scheduler", "--metrics-port",
                             "0"], env=env_for(isolated_env, dags),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = Lines(proc)
        url = out.wait_for(r"metrics: (http://\S+)").group(1)
        deadline = time.monotonic() + 30
        while True:
            text = requests.get(url, timeout=5).text
            loops = re.search(r"^mlpipe_scheduler_loop_seconds_count (\S+)$", text, re.M)
            if (loops and float(loops.group(1)) >= 2) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    assert loops is not None and float(loops.group(1)) >= 2
    assert "mlpipe_queue_depth 0.0" in text
    assert "# TYPE mlpipe_task_duration_seconds histogram" in text
