"""The training loop behind ``TorchTrainOperator``: deterministic, checkpointed, resumable.

Given the same config and data, a run on CPU gives the same weights every time, and a run
that crashed and is resumed from its last checkpoint ends with the same weights and the same
number of epochs as one that never stopped: the checkpoint carries the model, optimizer,
scheduler, AMP scaler, the RNG states (global and the data loader's generator), the history
and the early-stopping counters.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.ml.config import ConfigError, TrainConfig, load_train_config
from mlpipe.ml.models import build_model, pick_device
from mlpipe.ml.transforms import Preprocessing, build_transforms, preprocessing_for

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["CHECKPOINT_NAME", "MetricsLogger", "TrainResult", "train", "train_rank"]

CHECKPOINT_NAME = "last.pt"
MetricsLogger = Callable[[dict[str, float], int], object]
Transform = Callable[["torch.Tensor"], "torch.Tensor"]
# Fields that may change between a crashed run and its resumption without changing results.
RESUME_SAFE_FIELDS = frozenset({"epochs", "num_workers", "num_threads", "checkpoint_every",
                                "device", "allow_download"})


@dataclass
class TrainResult:
    """What ``train`` returns: the final model and one history dict per epoch."""

    model: nn.Module
    history: list[dict[str, float]]
    best_val_acc: float
    epochs_run: int
    resumed_from_epoch: int = 0
    stopped_early: bool = False
    checkpoint_path: Path | None = None
    preprocessing: Preprocessing | None = None


@dataclass
class _State:
    """Everything that moves from epoch to epoch, and is written to a checkpoint."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float = float("inf")
    bad_epochs: int = 0
    stopped_early: bool = False


def train(
    config: TrainConfig | dict[str, Any] | str | os.PathLike[str],
    dataset_dir: Path | str,
    *,
    checkpoint_dir: Path,
    log: MetricsLogger | None = None,
    resume: bool = True,
    flush_log: Callable[[], object] | None = None,
    train_transform: Transform | None = None,
    eval_transform: Transform | None = None,
) -> TrainResult:
    """Train a classifier on the data set in ``dataset_dir`` (from ``preprocess_images``).

    The train and val splits are streamed from their shards (``ShardDataset``), shuffled by
    shard then within (``ShardShuffleSampler``, per seed and epoch); the transforms get uint8
    CHW tensors and default to scaling to 0..1 and normalising with the train mean/std.
    The model's input channels, size and classes come from the manifest.

    ``log(metrics, step)`` is called once per epoch (before that epoch's checkpoint, so an
    epoch whose metrics were not logged is run again after a crash). With ``resume``, the run
    continues from ``checkpoint_dir/last.pt`` if it exists. A ``log`` that writes in the
    background passes ``flush_log``: it is called after the checkpoint file is written and
    before it replaces the last one, so no checkpoint is ever ahead of the logged metrics.
    """
    cfg = load_train_config(config)
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if cfg.distributed is not None and cfg.distributed.nproc > 1:
        if train_transform is not None or eval_transform is not None:
            raise ConfigError([("train.distributed", (
                "custom train/eval transforms cannot be sent to torchrun workers; "
                "use train.augment instead"))])
        from mlpipe.ml.distributed import launch

        return launch(cfg, Path(dataset_dir), checkpoint_dir, log=log, resume=resume,
                      flush_log=flush_log)
    return train_rank(cfg, Path(dataset_dir), pick_device(cfg.device), checkpoint_dir,
                      log=log, resume=resume, flush_log=flush_log,
                      transforms=(train_transform, eval_transform))


def train_rank(cfg: TrainConfig, dataset_dir: Path, device: torch.device,
               checkpoint_dir: Path, *, log: MetricsLogger | None = None, resume: bool = True,
               flush_log: Callable[[], object] | None = None,
               transforms: tuple[Transform | None, Transform | None] = (None, None),
               rank: int = 0, world_size: int = 1) -> TrainResult:
    """The run of one process: all of ``train``, or rank ``rank`` of a DDP run (whose
    process group is already initialised); only rank 0 logs and writes checkpoints."""
    import torch

    devices = [device.index or 0] if device.type == "cuda" else []
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads())
    threads = cpu_threads(cfg, world_size)
    # fork_rng: seeding for this run must not change the caller's random streams.
    with torch.random.fork_rng(devices=devices):
        torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            trainer = _Trainer(cfg, dataset_dir, device, *transforms, rank=rank,
                               world_size=world_size)
            return trainer.run(checkpoint_dir, log, resume, flush_log)
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
            torch.set_num_threads(previous[2])


def cpu_threads(cfg: TrainConfig, world_size: int = 1) -> int | None:
    """torch's intra-op threads for one training process; None: leave torch's setting.

    ``num_threads`` if set; else None when ``OMP_NUM_THREADS`` is set (the user chose);
    else the CPUs this process may use, shared by the ``world_size`` processes of a run on
    this machine, less one per DataLoader worker (each worker is a busy process of its
    own), at least 1. Threads beyond the free cores do not add speed: each batch waits at
    OpenMP's barriers for the slowest thread, and a preempted thread stalls them all.
    """
    if cfg.num_threads is not None:
        return cfg.num_threads
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, world_size) - cfg.num_workers)


class _Trainer:
    """One training run; split out of ``train`` to keep each step small."""

    def __init__(self, cfg: TrainConfig, dataset_dir: Path, device: torch.device,
                 train_transform: Transform | None, eval_transform: Transform | None,
                 rank: int = 0, world_size: int = 1) -> None:
        import torch

        from mlpipe.ml.shards import ShardDataset, ShardShuffleSampler

        self.cfg = cfg
        self.device = device
        self.rank, self.world_size = rank, world_size
        cuda = device.type == "cuda"
        self.amp = cfg.amp and cuda
        self.channels_last = cfg.channels_last and cuda
        torch.manual_seed(cfg.seed)
        if cuda:
            torch.backends.cudnn.benchmark = not cfg.deterministic
        train_set = ShardDataset(dataset_dir, "train", train_transform)
        val_set = ShardDataset(dataset_dir, "val", eval_transform)
        manifest = train_set.manifest
        self.num_classes = len(manifest["classes"])
        pretrained, self.preprocessing = _pretrained_and_preprocessing(cfg, manifest)
        train_set.transform = train_transform or _transforms(cfg, self.preprocessing, manifest,
                                                              train=True)
        val_set.transform = eval_transform or _transforms(cfg, self.preprocessing, manifest,
                                                          train=False)
        self.model = build_model(
            cfg.model, in_channels=int(manifest["channels"]), num_classes=self.num_classes,
            image_size=self.preprocessing.image_size, pretrained=pretrained,
            freeze_backbone=cfg.freeze_backbone,
        ).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.sampler = ShardShuffleSampler(train_set, seed=cfg.seed, rank=rank,
                                           world_size=world_size)
        self._loaders(train_set, val_set, pin_memory=cuda)
        self.net = self.model  # what runs the batches: the model, or its DDP wrapper
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model)
        self.optimizer = _make_optimizer(cfg, self.model)
        self.top_k = min(cfg.top_k, self.num_classes)
        self.scheduler = _make_scheduler(cfg, self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def _loaders(self, train_set: Any, val_set: Any, *, pin_memory: bool) -> None:
        """The train loader (over this rank's sampler) and the val loader."""
        from torch.utils.data import DataLoader

        # A last batch of one sample breaks BatchNorm in training mode; drop it instead.
        n = len(self.sampler)
        drop_last = n > 1 and n % self.cfg.batch_size == 1
        self.train_loader = DataLoader(
            train_set, batch_size=self.cfg.batch_size, sampler=self.sampler, drop_last=drop_last,
            generator=self.generator, num_workers=self.cfg.num_workers, pin_memory=pin_memory,
            persistent_workers=self.cfg.num_workers > 0,
        )
        self.val_loader = DataLoader(
            val_set, batch_size=self.cfg.batch_size, shuffle=False,
            num_workers=self.cfg.num_workers, pin_memory=pin_memory,
        )

    def run(self, checkpoint_dir: Path, log: MetricsLogger | None, resume: bool,
            flush_log: Callable[[], object] | None = None) -> TrainResult:
        path = checkpoint_dir / CHECKPOINT_NAME
        state = self._load(path) if resume and path.exists() else _State()
        resumed_from = state.epoch
        while state.epoch < self.cfg.epochs and not state.stopped_early:
            metrics = self._epoch(state.epoch + 1)
            state.epoch += 1
            state.history.append(metrics)
            self._early_stopping(state, metrics["val_loss"])
            if log is not None and self.rank == 0:
                log({k: v for k, v in metrics.items() if k != "epoch"}, state.epoch)
            last = state.epoch == self.cfg.epochs or state.stopped_early
            if self.rank == 0 and (last or state.epoch % self.cfg.checkpoint_every == 0):
                self._save(path, state, flush_log)
        accs = [h["val_acc"] for h in state.history]
        return TrainResult(
            model=self.model, history=state.history, best_val_acc=max(accs, default=0.0),
            preprocessing=self.preprocessing,
            epochs_run=state.epoch, resumed_from_epoch=resumed_from,
            stopped_early=state.stopped_early, checkpoint_path=path if path.exists() else None,
        )

    def _early_stopping(self, state: _State, val_loss: float) -> None:
        if val_loss < state.best_val_loss:
            state.best_val_loss, state.bad_epochs = val_loss, 0
            return
        state.bad_epochs += 1
        patience = self.cfg.early_stopping_patience
        if patience is not None and state.bad_epochs >= patience:
            state.stopped_early = True

    def _epoch(self, epoch: int) -> dict[str, float]:
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.sampler.set_epoch(epoch)
        started = time.perf_counter()
        train_loss, train_acc, train_top, seen = self._pass(self.train_loader, training=True)
        seconds = time.perf_counter() - started
        val_loss, val_acc, val_top, _ = self._pass(self.val_loader, training=False)
        if self.world_size > 1:  # ranks' BatchNorm buffers differ slightly: rank 0 decides
            from mlpipe.ml.distributed import from_rank0

            val_loss, val_acc, val_top = from_rank0(val_loss, val_acc, val_top)
        if self.scheduler is not None:
            self.scheduler.step()
        top = f"top{self.top_k}_acc"
        return {
            "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
            f"train_{top}": train_top, "val_loss": val_loss, "val_acc": val_acc,
            f"val_{top}": val_top, "lr": lr, "epoch_seconds": seconds,
            "images_per_s": seen / seconds if seconds > 0 else 0.0,
        }

    def _pass(self, loader: Any, *, training: bool) -> tuple[float, float, float, int]:
        """One pass over ``loader``: mean loss, accuracy, top-k accuracy, sample count.

        Training sums are added up over all ranks (each saw its part of the split); every
        rank validates on the whole val split.
        """
        import torch

        self.model.train(training)
        total_loss, correct, top, seen = 0.0, 0, 0, 0
        with torch.set_grad_enabled(training):
            for xb, yb in loader:
                xb = xb.to(self.device, non_blocking=True)
                yb = yb.to(self.device, non_blocking=True)
                if self.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    logits = (self.net if training else self.model)(xb)
                    loss = self.loss_fn(logits, yb)
                if training:
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                total_loss += float(loss.detach()) * len(yb)
                best = logits.topk(self.top_k, dim=1).indices
                correct += int((best[:, 0] == yb).sum())
                top += int((best == yb[:, None]).any(dim=1).sum())
                seen += len(yb)
        if training and self.world_size > 1:
            from mlpipe.ml.distributed import all_sum

            total_loss, *counts = all_sum(total_loss, correct, top, seen)
            correct, top, seen = (round(c) for c in counts)
        if seen == 0:
            return float("nan"), 0.0, 0.0, 0
        return total_loss / seen, correct / seen, top / seen, seen

    def _save(self, path: Path, state: _State,
              flush_log: Callable[[], object] | None = None) -> None:
        """Write the checkpoint to a temporary file, then rename it over the old one."""
        import torch

        payload = {
            "format": 1,
            "config": self.cfg.model_dump(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "rng_loader": self.generator.get_state(),
            "epoch": state.epoch,
            "history": state.history,
            "best_val_loss": state.best_val_loss,
            "bad_epochs": state.bad_epochs,
            "stopped_early": state.stopped_early,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            if flush_log is not None:
                flush_log()  # this epoch's metrics reach the store before its checkpoint
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self, path: Path) -> _State:
        import torch

        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        saved = ckpt["config"]
        changed = sorted(
            k for k, v in self.cfg.model_dump().items()
            if k not in RESUME_SAFE_FIELDS and saved.get(k) != v
        )
        if changed:
            raise ConfigError([("train", (
                f"checkpoint {path} was written with different settings {changed}; "
                "delete the checkpoint directory or run with resume=False to start over"
            ))])
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng_cpu"].cpu())
        if self.device.type == "cuda" and ckpt["rng_cuda"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng_cuda"]])
        self.generator.set_state(ckpt["rng_loader"].cpu())
        return _State(
            epoch=ckpt["epoch"], history=list(ckpt["history"]),
            best_val_loss=ckpt["best_val_loss"], bad_epochs=ckpt["bad_epochs"],
            stopped_early=ckpt["stopped_early"],
        )


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    import torch

    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=cfg.step_size, gamma=cfg.gamma
        )
    return None


def _pretrained_and_preprocessing(cfg: TrainConfig, manifest: dict[str, Any]
                                  ) -> tuple[Any, Preprocessing]:
    """The pretrained weights of ``cfg`` (or None) and the preprocessing that goes with them."""
    from mlpipe.ml.weights import load_weights

    if cfg.weights is None:
        return None, preprocessing_for(cfg, manifest)
    pretrained = load_weights(cfg.model, cfg.weights, allow_download=cfg.allow_download)
    own = pretrained.enum.transforms() if pretrained.enum is not None else None
    return pretrained, preprocessing_for(cfg, manifest, own)


def _transforms(cfg: TrainConfig, prep: Preprocessing, manifest: dict[str, Any], *,
                train: bool) -> Transform:
    composed: Transform = build_transforms(
        cfg, mean=prep.mean, std=prep.std, image_size=prep.image_size, train=train,
        resize=prep.resize, channels=int(manifest["channels"]))
    return composed

