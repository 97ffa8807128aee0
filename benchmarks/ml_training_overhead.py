"""Training overhead: ``TorchTrainOperator`` against a hand-written PyTorch loop.

Data: scikit-learn's 1,797 real 8x8 digits as PNGs (``write_digits_pngs``), preprocessed
once as ``configs/image_classifier.yaml`` says (16x16 grayscale, its splits and seed).
Model and hyper-parameters: that file's ``train`` section (``simple_cnn``, AdamW, batch 64,
lr, seed). Each repeat runs both sides at 2 and at ``--epochs`` epochs, interleaved (the
order alternates between repeats):
- mlpipe: a DAG with one ``TorchTrainOperator`` run through ``dag.test()``, MLflow on (a
  ``sqlite:///`` tracking store in a temporary folder; the task's run nested under the DAG
  run's). Its training time is ``execute`` less the one-off model logging (``_log_model``,
  timed by a subclass that changes nothing else);
- baseline: the same data (``ShardDataset`` + ``ShardShuffleSampler``, torchvision v2
  ``ToDtype`` + ``Normalize`` with the train mean/std), ``build_model("simple_cnn", ...)``,
  seed, shuffling, optimizer, batch size and epochs, with a validation pass per epoch, in a
  plain loop: no checkpoints, no metric logging, no tracking.
The per-epoch time of each side is the slope between its two runs (paired per repeat: the
per-epoch overhead % is the median of the repeats' ratios); the fixed overhead is the whole
task's time at zero epochs (intercept) less the hand loop's.
A warm-up of each (one epoch) runs first, so neither pays imports or the store's creation.
Both run with ``--threads`` torch threads (default 1; ``auto``: what the operator picks by
itself, ``ml.training.cpu_threads``): on a machine shared with other work, OpenMP's
barriers between threads make multi-threaded epoch times vary several-fold.
Checks: both train the same number of epochs and end with the same losses and accuracy
(same seed, same order of batches: the operator's history is read back from MLflow).
Reported: medians.
Usage: ``python benchmarks/ml_training_overhead.py [--epochs 8] [--repeat 5] [--quick]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ml_data import median, scratch_env, timed
from _report import Figure, add_arguments, emit

from mlpipe import DAG
from mlpipe.core.operator import Context
from mlpipe.operators import TorchTrainOperator

CONFIG_FILE = Path(__file__).resolve().parents[1] / "configs" / "image_classifier.yaml"
OVERHEAD_TARGET = "<= 3%"
SHORT_EPOCHS = 2


class TimedTrainOperator(TorchTrainOperator):
    """``TorchTrainOperator`` unchanged, but timing ``execute`` and the model logging."""

    timings: ClassVar[dict[str, float]] = {}

    def execute(self, context: Context) -> Any:
        started = time.perf_counter()
        try:
            return super().execute(context)
        finally:
            self.timings["execute"] = time.perf_counter() - started

    @staticmethod
    def _log_model(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return TorchTrainOperator._log_model(*args, **kwargs)
        finally:
            TimedTrainOperator.timings["log_model"] = time.perf_counter() - started


@dataclass
class HandResult:
    """What the hand-written loop ends with (to compare with the operator's history)."""

    epochs: int
    train_loss: float
    val_acc: float


def prepare_dataset(root: Path, settings: dict[str, Any], limit: int | None = None) -> Path:
    """Digits PNGs preprocessed as the shipped pipeline does; returns the data set folder."""
    from mlpipe.ml.datasets import write_digits_pngs
    from mlpipe.ml.preprocess import PreprocessOptions, preprocess_images

    write_digits_pngs(root / "digits", limit=limit)
    options = PreprocessOptions(
        image_size=tuple(settings["image_size"]), grayscale=settings["grayscale"],
        val_fraction=settings["val_fraction"], test_fraction=settings["test_fraction"],
        seed=settings["seed"], num_workers=1)
    preprocess_images(root / "digits", root / "dataset", options)
    return root / "dataset"


def run_operator(dataset: Path, config: dict[str, Any]) -> dict[str, float]:
    """One ``dag.test()`` of a one-task DAG; returns the timings and the final metrics."""
    from mlflow import MlflowClient

    TimedTrainOperator.timings.clear()
    with DAG("bench_train") as dag:
        TimedTrainOperator(task_id="train", dataset_uri=dataset.as_uri(), config=config)
    run = dag.test()
    ti = run.get_task_instance("train")
    if run.state != "success" or ti is None:
        raise RuntimeError(f"training failed: {ti.error if ti else run.state}")
    client = MlflowClient()  # MLFLOW_TRACKING_URI, as the engine's
    experiment = client.get_experiment_by_name(dag.dag_id)
    found = client.search_runs(
        [experiment.experiment_id] if experiment else [],
        filter_string=f"tags.`mlpipe.run_id` = '{run.run_id}' and tags.`mlpipe.task_id` = 'train'")
    if len(found) != 1:
        raise AssertionError(f"expected one nested MLflow run for the task, found {len(found)}")
    run_id = found[0].info.run_id
    losses = client.get_metric_history(run_id, "train_loss")
    accs = client.get_metric_history(run_id, "val_acc")
    return {**TimedTrainOperator.timings, "epochs": len(losses),
            "train_loss": max(losses, key=lambda m: m.step).value,
            "val_acc": max(accs, key=lambda m: m.step).value}


def run_hand_loop(dataset: Path, config: dict[str, Any]) -> HandResult:
    """The same training as a plain PyTorch loop (a validation pass after every epoch)."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision.transforms import v2

    from mlpipe.ml.models import build_model, pick_device
    from mlpipe.ml.shards import ShardDataset, ShardShuffleSampler, split_stats

    train_set = ShardDataset(dataset, "train")
    manifest = train_set.manifest
    train_set.transform = v2.Compose([v2.ToDtype(torch.float32, scale=True),
                                      v2.Normalize(*split_stats(manifest))])
    val_set = ShardDataset(dataset, "val", train_set.transform)
    device = pick_device(config.get("device", "auto"))
    batch_size, seed = int(config["batch_size"]), int(config["seed"])
    torch.manual_seed(seed)
    model = build_model("simple_cnn", in_channels=int(manifest["channels"]),
                        num_classes=len(manifest["classes"]),
                        image_size=int(manifest["image_size"][-1])).to(device)
    sampler = ShardShuffleSampler(train_set, seed=seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler,
                              drop_last=len(train_set) % batch_size == 1)
    val_loader = DataLoader(val_set, batch_size=batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(config["lr"]),
                                  weight_decay=float(config.get("weight_decay", 0.0)))
    loss_fn = torch.nn.CrossEntropyLoss()
    train_loss = val_acc = math.nan
    for epoch in range(1, int(config["epochs"]) + 1):
        sampler.set_epoch(epoch)
        model.train()
        total, seen = 0.0, 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(yb)
            seen += len(yb)
        train_loss = total / seen
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in val_loader:
                correct += int((model(xb.to(device)).argmax(dim=1) == yb.to(device)).sum())
        val_acc = correct / len(val_set)
    return HandResult(int(config["epochs"]), train_loss, val_acc)


def check_same_training(ours: dict[str, float], hand: HandResult) -> None:
    """Same epochs, same final loss and accuracy: the two really trained the same thing."""
    if ours["epochs"] != hand.epochs or abs(ours["val_acc"] - hand.val_acc) > 1e-9 \
            or not math.isclose(ours["train_loss"], hand.train_loss, rel_tol=1e-4):
        raise AssertionError(f"the operator and the hand loop differ: operator {ours}, "
                             f"hand loop {hand}")


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8,
                        help="epochs of the long runs (the short runs have 2)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", default="1",
                        help="torch threads, both sides: a number (default 1: see the "
                        "docstring) or 'auto', what the operator picks (ml.training.cpu_threads)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    import torch

    from mlpipe.ml.config import load_train_config
    from mlpipe.ml.training import cpu_threads

    count = args.threads
    if count == "auto":
        train_section = yaml.safe_load(CONFIG_FILE.read_text())["train"]
        count = cpu_threads(load_train_config(train_section)) or torch.get_num_threads()
    threads = torch.get_num_threads()
    torch.set_num_threads(int(count))
    print(f"torch threads: {int(count)} on both sides")
    try:
        figures = measure((1, 2), 1, limit=400, threads=int(count)) if args.quick \
            else measure((SHORT_EPOCHS, args.epochs), args.repeat, threads=int(count))
    finally:
        torch.set_num_threads(threads)
    emit("ml_training_overhead", figures, args.json)
    return figures


@dataclass
class Pair:
    """One repeat: both sides at the short and the long epoch count, interleaved."""

    train: dict[int, float] = field(default_factory=dict)  # operator, less model logging
    task: dict[int, float] = field(default_factory=dict)  # the whole dag.test()
    hand: dict[int, float] = field(default_factory=dict)
    log_model: list[float] = field(default_factory=list)


def run_pair(dataset: Path, config: dict[str, Any], epochs: tuple[int, int],
             flip: bool) -> Pair:
    """Operator and hand loop, short then long, in alternating order (``flip``)."""
    pair = Pair()
    for n in epochs:
        cfg = {**config, "epochs": n}
        order = ["mlpipe", "hand"]
        for step in order[::-1] if flip else order:
            if step == "mlpipe":
                seconds, ours = timed(lambda cfg=cfg: run_operator(dataset, cfg))
                pair.task[n] = seconds
                pair.train[n] = ours["execute"] - ours["log_model"]
                pair.log_model.append(ours["log_model"])
            else:
                pair.hand[n], hand = timed(lambda cfg=cfg: run_hand_loop(dataset, cfg))
        check_same_training(ours, hand)
    return pair


def measure(epochs: tuple[int, int], repeat: int, *, limit: int | None = None,
            warm_up: bool = True, threads: int = 1) -> list[Figure]:
    """Warm up both sides, then ``repeat`` interleaved pairs; the figures (medians).

    Per epoch: the slope between the short and the long run of each side, paired within a
    repeat. Fixed: what is left of the whole task at zero epochs, less the same for the
    hand loop (config, MLflow params and run, checkpoints' first write, model logging).
    """
    settings = yaml.safe_load(CONFIG_FILE.read_text())
    # the operator sets its own thread count (cpu_threads): pin it to the hand loop's
    config = {**settings["train"], "num_threads": threads}
    short, long = epochs
    span = long - short
    pairs: list[Pair] = []
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-train-") as tmp, \
            scratch_env(MLPIPE_HOME=str(Path(tmp) / "home"),
                        MLFLOW_TRACKING_URI=f"sqlite:///{Path(tmp) / 'mlflow.db'}",
                        MLFLOW_DISABLE_TELEMETRY="true"):
        dataset = prepare_dataset(Path(tmp), settings, limit)
        if warm_up:
            warm = {**config, "epochs": 1}
            check_same_training(run_operator(dataset, warm), run_hand_loop(dataset, warm))
        pairs = [run_pair(dataset, config, epochs, flip=i % 2 == 1) for i in range(repeat)]
    ours_epoch = [(p.train[long] - p.train[short]) / span for p in pairs]
    hand_epoch = [(p.hand[long] - p.hand[short]) / span for p in pairs]
    overhead = [(o - h) / h * 100 for o, h in zip(ours_epoch, hand_epoch, strict=True)]
    fixed = [(p.task[short] - short * o) - (p.hand[short] - short * h)
             for p, o, h in zip(pairs, ours_epoch, hand_epoch, strict=True)]
    images = limit or 1797
    workload = (f"simple_cnn, {images} digits 16x16, {short} vs {long} epochs, "
                f"{threads} torch thread{'s' if threads > 1 else ''}")
    return [
        Figure(workload, "time per epoch", "s", median(ours_epoch),
               baseline=median(hand_epoch), baseline_label="hand-written loop",
               target=">= 0.97x (overhead <= 3%)"),
        Figure(workload, "per-epoch overhead (paired)", "%", median(overhead),
               target=OVERHEAD_TARGET),
        Figure(workload, "fixed overhead (whole task at 0 epochs)", "s", median(fixed)),
        Figure(workload, "of which MLflow model logging", "s",
               median([t for p in pairs for t in p.log_model])),
        Figure(workload, f"whole task in dag.test(), {long} epochs", "s",
               median([p.task[long] for p in pairs]),
               baseline=median([p.hand[long] for p in pairs]),
               baseline_label="hand-written loop"),
    ]


if __name__ == "__main__":
    main()
