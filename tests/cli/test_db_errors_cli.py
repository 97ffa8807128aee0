"""Metadata databases this mlpipe cannot use are one clear line, never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpipe.store import database

DAGS = Path(__file__).resolve().parents[1] / "dags" / "crash"


def _mlpipe(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS)}
    return subprocess.Popen([sys.executable, "-m", "mlpipe", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_database_from_a_newer_mlpipe_is_one_line(isolated_env: Path) -> None:
    assert _mlpipe("db", "migrate").wait(timeout=60) == 0
    with sqlite3.connect(isolated_env / "mlpipe.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")

    proc = _mlpipe("dags", "list-runs", "crashy")
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "is at schema revision '9999_from_the_future', newer than this mlpipe knows " \
           f"(latest '{database.head_revision()}'" in err
    assert err.strip().endswith("upgrade mlpipe")


def test_processes_opening_a_fresh_database_at_once_take_turns(isolated_env: Path) -> None:
    procs = [_mlpipe("dags", "trigger", "crashy", "--no-wait", "--run-id", f"r{n}")
             for n in range(4)]
    results = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    assert not any("locked" in err for _, err in results)


def test_a_database_on_a_read_only_filesystem_is_one_line(isolated_env: Path,
                                                          tmp_path: Path) -> None:
    assert _mlpipe("db", "migrate").wait(timeout=60) == 0
    mount = tmp_path / "ro"
    mount.mkdir()
    # root ignores file modes: only a read-only filesystem is read-only for it
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        (mount / "home").mkdir()
        (mount / "home" / "mlpipe.db").write_bytes((isolated_env / "mlpipe.db").read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS),
               "MLPIPE_HOME": str(mount / "home")}
        done = subprocess.run([sys.executable, "-m", "mlpipe", "dags", "list-runs", "crashy"],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(["umount", str(mount)], check=False)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "cannot reach the metadata database" in done.stderr
    assert "the file and its folder must be writable" in done.stderr


def test_a_database_deleted_mid_run_is_one_line_and_not_recreated(
        isolated_env: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS), "CRASH_TEST_DIR": str(marks)}
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe", "dags", "trigger", "nap",
                             "--wait"], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (marks / "nap").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for path in isolated_env.glob("mlpipe.db*"):
        if not path.name.endswith(".lock"):
            path.unlink()
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: the metadata database failed: unable to open database file")
    assert not (isolated_env / "mlpipe.db").exists()  # no empty database made in its place
