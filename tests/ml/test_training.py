"""train(): determinism, checkpoint/resume equal to an uninterrupted run, early stopping,
lr schedules, optimizers and per-epoch logging, on tiny separable data on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlpipe.ml.config import ConfigError, TrainConfig

torch = pytest.importorskip("torch")

from mlpipe.ml.shards import write_arrays  # noqa: E402
from mlpipe.ml.training import CHECKPOINT_NAME, train  # noqa: E402

Data = tuple[Any, Any]


def make_data(n: int, seed: int) -> Data:
    """``n`` uint8 1x8x8 images of 3 classes: class k is bright in the k-th band of rows."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(n, 1, 8, 8, generator=gen) * 25 + 80
    for k in range(3):
        x[y == k, :, 2 * k : 2 * k + 3, :] += 100
    return x.clamp(0, 255).to(torch.uint8), y


def write(root: Path, train_data: Data, val_data: Data) -> Path:
    """The two splits as a data set on disk (small shards: several per split)."""
    splits = {name: (x.numpy(), y.numpy())
              for name, (x, y) in (("train", train_data), ("val", val_data))}
    write_arrays(root, splits, ["a", "b", "c"], shard_size=64)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("data"), make_data(200, seed=1), make_data(60, seed=2))


def config(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "model": "simple_cnn", "epochs": 3, "batch_size": 32, "optimizer": "adam",
        "lr": 0.01, "seed": 7, "device": "cpu",
    }
    return TrainConfig(**{**base, **overrides})


def run(cfg: TrainConfig, data: Path, ckpt: Path, **kwargs: Any) -> Any:
    return train(cfg, data, checkpoint_dir=ckpt, **kwargs)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def losses(history: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(h["train_loss"], h["val_loss"]) for h in history]


def test_history_and_logging(data: Path, tmp_path: Path) -> None:
    logged: list[tuple[dict[str, float], int]] = []
    ckpt = tmp_path / "ckpt"
    result = run(config(), data, ckpt, log=lambda m, step: logged.append((m, step)))
    assert result.epochs_run == 3
    assert result.resumed_from_epoch == 0
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {
        "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
        "epoch_seconds", "images_per_s", "train_top3_acc", "val_top3_acc",
    }  # top_k 5 is capped at the 3 classes: top-3 of 3 classes is always right
    assert all(h["val_top3_acc"] == 1.0 and h["images_per_s"] > 0 for h in result.history)
    assert [step for _, step in logged] == [1, 2, 3]  # once per epoch, not per batch
    assert "epoch" not in logged[0][0]
    assert logged[-1][0]["val_acc"] == result.history[-1]["val_acc"]
    assert result.best_val_acc == max(h["val_acc"] for h in result.history)
    assert result.best_val_acc > 0.9
    assert [p.name for p in ckpt.iterdir()] == [CHECKPOINT_NAME]  # no temp files left


def test_same_seed_gives_identical_runs(data: Path, tmp_path: Path) -> None:
    cfg = config(epochs=2)
    first = run(cfg, data, tmp_path / "a")
    second = run(cfg, data, tmp_path / "b")
    assert same_weights(first.model, second.model)
    assert losses(first.history) == losses(second.history)
    other = run(cfg.model_copy(update={"seed": 8}), data, tmp_path / "c")
    assert losses(other.history) != losses(first.history)


def test_train_leaves_global_rng_and_determinism_flag_alone(
    data: Path, tmp_path: Path
) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    run(config(epochs=1), data, tmp_path)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.are_deterministic_algorithms_enabled()


class Crash(Exception):
    pass


def test_resume_after_crash_matches_uninterrupted_run(
    data: Path, tmp_path: Path
) -> None:
    # Cosine depends on the total epochs, and dropout-free BN models still use the RNG
    # through shuffling: both must be restored exactly for the weights to match.
    cfg = config(epochs=4, checkpoint_every=1, lr_schedule="cosine", optimizer="sgd")
    straight = run(cfg, data, tmp_path / "straight")

    def crash_at_3(metrics: dict[str, float], step: int) -> None:
        if step == 3:
            raise Crash

    ckpt = tmp_path / "crashed"
    with pytest.raises(Crash):
        run(cfg, data, ckpt, log=crash_at_3)
    logged: list[int] = []
    resumed = run(cfg, data, ckpt, log=lambda m, step: logged.append(step))
    assert resumed.resumed_from_epoch == 2
    assert resumed.epochs_run == 4
    assert logged == [3, 4]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert losses(resumed.history) == losses(straight.history)
    assert same_weights(resumed.model, straight.model)


def test_a_checkpoint_never_gets_ahead_of_the_flushed_metrics(
    data: Path, tmp_path: Path
) -> None:
    # A logger that writes in the background is flushed before each checkpoint replaces the
    # last one: a crash after the rename must never leave an epoch checkpointed but unlogged.
    ckpt = tmp_path / "ckpt"
    pending: list[int] = []
    durable: list[int] = []
    checkpointed_at_flush: list[int | None] = []

    def flush() -> None:
        path = ckpt / CHECKPOINT_NAME
        checkpointed_at_flush.append(
            torch.load(path, weights_only=True)["epoch"] if path.exists() else None)
        durable.extend(pending)
        pending.clear()

    run(config(epochs=4, checkpoint_every=2), data, ckpt,
        log=lambda m, step: pending.append(step), flush_log=flush)
    assert durable == [1, 2, 3, 4]
    assert checkpointed_at_flush == [None, 2]  # epochs 2 and 4: flushed, then renamed
    assert torch.load(ckpt / CHECKPOINT_NAME, weights_only=True)["epoch"] == 4


def test_extending_epochs_continues_from_checkpoint(
    data: Path, tmp_path: Path
) -> None:
    straight = run(config(epochs=4), data, tmp_path / "straight")
    ckpt = tmp_path / "extended"
    assert run(config(epochs=2), data, ckpt).epochs_run == 2
    resumed = run(config(epochs=4), data, ckpt)
    assert (resumed.resumed_from_epoch, resumed.epochs_run) == (2, 4)
    assert same_weights(resumed.model, straight.model)
    # A finished run resumed again does no more work.
    again = run(config(epochs=4), data, ckpt)
    assert (again.resumed_from_epoch, again.epochs_run) == (4, 4)
    assert same_weights(again.model, straight.model)


def test_resume_false_starts_over(data: Path, tmp_path: Path) -> None:
    run(config(epochs=2), data, tmp_path)
    result = run(config(epochs=2), data, tmp_path, resume=False)
    assert result.resumed_from_epoch == 0
    assert result.epochs_run == 2


def test_resume_with_changed_settings_is_refused(
    data: Path, tmp_path: Path
) -> None:
    run(config(epochs=1), data, tmp_path)
    with pytest.raises(ConfigError, match=r"different settings \['lr'\]"):
        run(config(epochs=2, lr=0.05), data, tmp_path)


def test_early_stopping_stops_before_the_last_epoch(
    data: Path, tmp_path: Path
) -> None:
    # Validation labels unrelated to the images: the val loss gets worse as the model fits.
    train_data, (val_x, val_y) = make_data(200, seed=1), make_data(60, seed=2)
    shuffled = val_y[torch.randperm(len(val_y), generator=torch.Generator().manual_seed(0))]
    noisy = write(tmp_path / "noisy", train_data, (val_x, (shuffled + 1) % 3))
    cfg = config(epochs=20, early_stopping_patience=2)
    result = run(cfg, noisy, tmp_path / "ckpt")
    assert result.stopped_early
    assert result.epochs_run < 20
    assert len(result.history) == result.epochs_run
    again = run(cfg, noisy, tmp_path / "ckpt")  # a stopped run stays stopped when resumed
    assert again.epochs_run == result.epochs_run


@pytest.mark.parametrize(
    ("schedule", "extra", "expected"),
    [
        ("step", {"step_size": 1, "gamma": 0.5}, [0.01, 0.005, 0.0025]),
        ("cosine", {}, [0.01, 0.0075, 0.0025]),
        ("none", {}, [0.01, 0.01, 0.01]),
    ],
)
def test_lr_schedule_shows_in_history(
    data: Path, tmp_path: Path, schedule: str, extra: dict[str, Any],
    expected: list[float],
) -> None:
    result = run(config(lr_schedule=schedule, **extra), data, tmp_path)
    assert [h["lr"] for h in result.history] == pytest.approx(expected)


@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.05), ("adam", 0.01), ("adamw", 0.01)])
def test_every_optimizer_learns(
    data: Path, tmp_path: Path, optimizer: str, lr: float
) -> None:
    result = run(config(optimizer=optimizer, lr=lr), data, tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_acc"] > 0.8


def test_yaml_config_path_is_accepted(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  epochs: 1\n  batch_size: 64\n  device: cpu\n")
    assert run(str(path), data, tmp_path / "ckpt").epochs_run == 1


def test_torch_threads_follow_the_config_or_the_free_cores_and_are_restored(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from mlpipe.ml.training import cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert cpu_threads(config()) == 8
    assert cpu_threads(config(num_workers=3)) == 5  # each DataLoader worker takes a core
    assert cpu_threads(config(num_workers=2), world_size=2) == 2  # 4 cores per process
    assert cpu_threads(config(num_workers=12)) == 1  # never below one
    assert cpu_threads(config(num_threads=3, num_workers=6)) == 3  # explicit wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu_threads(config()) is None  # the user's environment decides
    monkeypatch.delenv("OMP_NUM_THREADS")

    seen: list[int] = []

    def spy(x: Any) -> Any:  # runs in this process (num_workers=0) for every sample
        seen.append(torch.get_num_threads())
        return x.float() / 255

    before = torch.get_num_threads()
    want = 2 if before != 2 else 3
    run(config(epochs=1, num_threads=want), data, tmp_path, train_transform=spy)
    assert set(seen) == {want}
    assert torch.get_num_threads() == before
