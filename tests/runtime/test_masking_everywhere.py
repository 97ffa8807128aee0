"""A secret a task reads is masked, and never stored in clear, under every executor.

The downstream task runs in another process under the local executor: the secret reaches it
sealed in the XCom and is masked in its log too, while the task still gets the real value.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags" / "masking"
CANARY = "canary-s3cr3t-9b1f"


@pytest.mark.parametrize("executor", ["sequential", "local"])
def test_a_secret_passed_through_xcom_is_masked_and_sealed(
        executor: str, isolated_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "digest"
    env = {**os.environ, "MLPIPE_DAGS_FOLDER": str(DAGS), "MLPIPE_EXECUTOR": executor,
           "MLPIPE_CONN_DB": f"postgresql://u:{CANARY}@db.example/d",
           "LEAK_TEST_OUT": str(out)}
    done = subprocess.run([sys.executable, "-m", "mlpipe", "dags", "trigger", "leak", "--wait"],
                          env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert CANARY not in done.stdout + done.stderr
    # the downstream task got the real password
    assert out.read_text() == hashlib.sha256(CANARY.encode()).hexdigest()
    logs = sorted(isolated_env.glob("logs/**/*.log"))
    assert {p.parent.name for p in logs} == {"task_id=fetch", "task_id=show"}
    for log in logs:
        text = log.read_text()
        assert CANARY not in text, log
    text_of = {p.parent.name: p.read_text() for p in logs}
    assert "the password is ***" in text_of["task_id=fetch"]  # fetch prints it
    assert "'password': '***'" in text_of["task_id=show"]  # show prints what it pulled
    for path in isolated_env.rglob("*"):  # the database and its WAL included
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
