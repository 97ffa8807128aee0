"""A training task whose process is SIGKILLed mid-training resumes from its checkpoint.

The DAG runs through the persisted path with the LocalExecutor (each task instance in its
own process) under a real ``mlpipe dags trigger`` process, as a user runs it. A helper
thread in the test waits for the train task's first checkpoint, SIGKILLs the task's process,
and the engine notices the dead try and runs the retry, which must pick up where the killed
try's last checkpoint left off and train exactly the remaining epochs.

The run is driven from a fresh interpreter on purpose: the test process itself has run
torch in earlier tests, and a process forked from one whose OpenMP thread pool is running
can hang in its first parallel region (the engine forks its task processes).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlpipe.runtime.models import DagRun, TaskInstance
from mlpipe.scheduler.service import Engine
from mlpipe.settings import load_settings
from mlpipe.store.entities import TIKey

if TYPE_CHECKING:
    from mlflow.entities import Run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

DAG_ID = "train_kill_resume"
RUN_ID = "r1"
EPOCHS = 8
CONFIG = {"model": "simple_cnn", "epochs": EPOCHS, "batch_size": 32, "lr": 0.01, "seed": 0,
          "device": "cpu", "checkpoint_every": 1}
#: A SIGKILLed child is noticed by its exit status at once; the reaper's timeout is kept
#: well above a starved heartbeat on a busy 2-core machine, so the retry is never reaped.
HEARTBEAT_TIMEOUT = 10.0
MLPIPE = str(Path(sys.executable).parent / "mlpipe")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlpipe.ml.datasets import write_digits_pngs

    folder = tmp_path_factory.mktemp("digits")
    write_digits_pngs(folder, limit=300)
    return folder


DAG_FILE = """
from datetime import timedelta

from mlpipe import DAG
from mlpipe.operators import ImagePreprocessOperator, TorchTrainOperator

with DAG({dag_id!r}) as dag:
    prep = ImagePreprocessOperator(task_id="preprocess", input_uri={digits!r},
                                   image_size=(8, 8), grayscale=True, num_workers=1)
    TorchTrainOperator(task_id="train", dataset_uri=prep.output, config={config!r},
                       retries=1, retry_delay=timedelta(0))
"""


class Killer:
    """Waits (with a deadline) for the first checkpoint of the running train try, then
    SIGKILLs that try's process; runs in a thread while the test drives the DAG run."""

    def __init__(self, engine: Engine, checkpoint: Path, *, within: float = 90.0) -> None:
        self.engine = engine
        self.checkpoint = checkpoint
        self.within = within
        self.pid: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="killer")

    def start(self) -> Killer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + self.within
            while not self.checkpoint.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no checkpoint at {self.checkpoint} after {self.within} s")
                time.sleep(0.01)
            ti = self.engine.store.get_ti(TIKey(DAG_ID, RUN_ID, "train"))
            assert ti is not None and ti.state == "running" and ti.try_number == 1, ti
            assert ti.pid is not None
            self.pid = ti.pid
            os.kill(ti.pid, signal.SIGKILL)
        except BaseException as exc:  # reported by join() in the test's thread
            self.error = exc

    def join(self) -> int:
        self._thread.join(30)
        assert self.error is None, f"could not kill the train task: {self.error!r}"
        assert self.pid is not None
        return self.pid


@dataclass
class Outcome:
    """What one killed-and-resumed DAG run left behind."""

    run: DagRun
    killed_pid: int
    checkpoint: Path
    tracking_uri: str

    @property
    def train(self) -> TaskInstance:
        ti = self.run.get_task_instance("train")
        assert ti is not None
        return ti

    def resumed_epoch(self) -> int:
        found = re.search(r"resumed from the checkpoint of epoch (\d+)", self.train.try_log(2))
        assert found, self.train.try_log(2)
        return int(found.group(1))

    def train_runs(self) -> dict[int, Run]:
        """The train task's nested MLflow runs by try number."""
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri)
        experiment = client.get_experiment_by_name(DAG_ID)
        runs = client.search_runs([experiment.experiment_id],
                                  filter_string="tags.`mlpipe.task_id` = 'train'")
        return {int(r.data.tags["mlpipe.try_number"]): r for r in runs}

    def logged_epochs(self) -> dict[int, list[int]]:
        """The steps of ``val_loss`` each try logged to its MLflow run."""
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri)
        return {n: [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")]
                for n, r in self.train_runs().items()}


@pytest.fixture(scope="module")
def outcome(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """One DAG run whose train task is SIGKILLed after its first checkpoint (shared by the
    tests below: it takes most of their time). The environment is isolated as the root
    conftest does it for each test."""
    workdir = tmp_path_factory.mktemp("kill_resume")
    home = workdir / "mlpipe_home"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("MLPIPE_", "MLFLOW_", "AWS_")):
                mp.delenv(name)
        mp.setenv("MLPIPE_HOME", str(home))
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.chdir(workdir)
        dags = workdir / "dags"
        dags.mkdir()
        (dags / "kill_resume.py").write_text(DAG_FILE.format(
            dag_id=DAG_ID, digits=digits.as_uri(), config=CONFIG))
        settings = load_settings(executor="local", parallelism=2, dags_folder=dags,
                                 task_lease_s=HEARTBEAT_TIMEOUT)
        engine = Engine.from_settings(settings)
        try:
            checkpoint = (home / "artifacts" / DAG_ID / RUN_ID / "train" / "checkpoints"
                          / "last.pt")
            killer = Killer(engine, checkpoint).start()
            env = {**os.environ, "MLPIPE_EXECUTOR": "local", "MLPIPE_PARALLELISM": "2",
                   "MLPIPE_DAGS_FOLDER": str(dags),
                   "MLPIPE_TASK_LEASE_S": str(HEARTBEAT_TIMEOUT)}
            done = subprocess.run([MLPIPE, "dags", "trigger", DAG_ID, "--run-id", RUN_ID,
                                   "--wait"],
                                  env=env, cwd=workdir, capture_output=True, text=True,
                                  timeout=150, check=False)
            killed_pid = killer.join()
            dag = engine.get_dag(DAG_ID)
            record = engine.store.get_run(DAG_ID, RUN_ID)
            assert record is not None, done.stdout + done.stderr
            run = DagRun.from_record(record, dag, engine.store, params={})
            yield Outcome(run, killed_pid, checkpoint, engine.settings.tracking.tracking_uri)
        finally:
            engine.store.dispose()


def test_the_killed_training_try_is_retried_and_the_run_succeeds(outcome: Outcome) -> None:
    ti = outcome.train
    assert outcome.run.state == "success", f"train: {ti.state} {ti.error}\n{ti.log}"
    assert (ti.state, ti.try_number) == ("success", 2)
    assert ti.pid != outcome.killed_pid
    assert "task process exited with code -9 without a result" in ti.try_log(1)
    model = ti.xcom_pull()
    assert str(getattr(model, "uri", model)).startswith(("runs:/", "models:/"))


def test_the_retry_resumes_from_the_checkpoint_and_trains_only_the_remaining_epochs(
        outcome: Outcome) -> None:
    epoch = outcome.resumed_epoch()
    assert 1 <= epoch < EPOCHS
    # the retry's log and its MLflow run have the epochs after the checkpoint, once each
    logged = [int(m) for m in re.findall(r"epoch (\d+): train_loss=", outcome.train.try_log(2))]
    assert logged == list(range(epoch + 1, EPOCHS + 1))
    steps = outcome.logged_epochs()
    assert sorted(steps) == [1, 2]
    assert steps[2] == list(range(epoch + 1, EPOCHS + 1))
    # the killed try logged epochs 1..epoch, plus at most the one it did not checkpoint
    assert steps[1][:epoch] == list(range(1, epoch + 1)) and len(steps[1]) <= epoch + 1
    assert sorted(set(steps[1]) | set(steps[2])) == list(range(1, EPOCHS + 1))

    import torch

    state = torch.load(outcome.checkpoint, map_location="cpu", weights_only=True)
    assert state["epoch"] == EPOCHS
    assert [h["epoch"] for h in state["history"]] == list(range(1, EPOCHS + 1))


def test_the_mlflow_run_of_the_killed_try_is_marked_failed(outcome: Outcome) -> None:
    runs = outcome.train_runs()
    assert runs[2].info.status == "FINISHED"
    assert runs[1].info.status == "FAILED"
