"""DDP through torchrun on the CPU (gloo, 2 real worker processes): metrics logged once per
epoch by rank 0, the result back in the parent, a run killed mid-way resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlpipe.ml.config import ConfigError

torch = pytest.importorskip("torch")

from test_training import make_data, write  # noqa: E402

from mlpipe.ml.distributed import RESULT_NAME, RUN_DIR  # noqa: E402
from mlpipe.ml.training import CHECKPOINT_NAME, train  # noqa: E402

BASE: dict[str, Any] = {"model": "simple_cnn", "epochs": 3, "batch_size": 32,
                        "optimizer": "adam", "lr": 0.01, "seed": 7, "device": "cpu"}
DDP = {"distributed": {"nproc": 2, "backend": "gloo"}}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("data"), make_data(400, seed=1), make_data(100, seed=2))


class Killed(RuntimeError):
    """Raised by the metrics logger to stop the parent in the middle of a run."""


@pytest.mark.slow
def test_two_processes_train_log_once_per_epoch_and_resume_after_a_kill(
    data: Path, tmp_path: Path
) -> None:
    single = train(BASE, data, checkpoint_dir=tmp_path / "single")
    ckpt = tmp_path / "ddp"
    logged: list[int] = []

    def die_at_epoch_2(metrics: dict[str, float], step: int) -> None:
        if step == 2:
            raise Killed("parent stopped")  # the workers are stopped with it
        logged.append(step)

    with pytest.raises(Killed):
        train({**BASE, **DDP}, data, checkpoint_dir=ckpt, log=die_at_epoch_2)
    assert logged == [1]
    assert torch.load(ckpt / CHECKPOINT_NAME, weights_only=True)["epoch"] == 1
    assert not (ckpt / RUN_DIR / RESULT_NAME).exists()

    records: list[tuple[dict[str, float], int]] = []
    result = train({**BASE, **DDP}, data, checkpoint_dir=ckpt,
                   log=lambda m, step: records.append((m, step)))
    assert result.resumed_from_epoch == 1
    assert [step for _, step in records] == [2, 3]  # once per epoch: rank 0 only
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert records[-1][0]["val_acc"] == result.history[-1]["val_acc"]
    assert result.checkpoint_path == ckpt / CHECKPOINT_NAME
    # the model rebuilt in the parent is rank 0's final model
    state = torch.load(ckpt / CHECKPOINT_NAME, weights_only=True)["model"]
    assert all(torch.equal(v, result.model.state_dict()[k]) for k, v in state.items())
    assert abs(result.history[-1]["val_acc"] - single.history[-1]["val_acc"]) <= 0.05
    assert result.history[-1]["val_acc"] > 0.9


def test_custom_transforms_cannot_go_to_workers(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^train\.distributed: custom train/eval transforms "
                       r"cannot be sent to torchrun workers; use train\.augment instead$"):
        train({**BASE, **DDP}, data, checkpoint_dir=tmp_path, train_transform=lambda x: x)
