"""DistributedDataParallel training through ``torchrun``, and the workers it starts.

``launch`` (called by ``train`` when ``distributed.nproc > 1``) runs
``python -m torch.distributed.run --standalone --nproc-per-node N -m mlpipe.ml.distributed``
with the config in ``<checkpoint_dir>/ddp/config.json``. Every rank trains on its part of
each epoch (``ShardShuffleSampler(rank=, world_size=)``), the model wrapped in DDP. Rank 0
alone reports metrics and writes checkpoints: it prints one ``MLPIPE_METRICS {json}`` line
per epoch and waits for the parent to acknowledge it on stdin after logging (and flushing)
them, so a checkpoint is never ahead of the logged metrics, as in a single-process run. At
the end rank 0 writes the final state dict and history to ``<checkpoint_dir>/ddp/result.pt``,
from which the parent rebuilds the model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from mlpipe.errors import DistributedTrainingError
from mlpipe.ml.config import TrainConfig, load_train_config

if TYPE_CHECKING:
    from mlpipe.ml.training import MetricsLogger, TrainResult

__all__ = ["DistributedTrainingError", "all_sum", "from_rank0", "launch", "main"]

PREFIX = "MLPIPE_METRICS "
RUN_DIR = "ddp"
RESULT_NAME = "result.pt"


def launch(cfg: TrainConfig, dataset_dir: Path, checkpoint_dir: Path, *,
           log: MetricsLogger | None = None, resume: bool = True,
           flush_log: Callable[[], object] | None = None) -> TrainResult:
    """Run ``cfg`` with ``cfg.distributed.nproc`` torchrun workers; return rank 0's result."""
    assert cfg.distributed is not None
    run_dir = checkpoint_dir / RUN_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RESULT_NAME).unlink(missing_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={cfg.distributed.nproc}", "-m", "mlpipe.ml.distributed",
           "--run-dir", str(run_dir), "--dataset", str(dataset_dir),
           "--checkpoint-dir", str(checkpoint_dir), *([] if resume else ["--no-resume"])]
    env = dict(os.environ)
    # the workers import this mlpipe, even from a source checkout that is not installed
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        _relay(proc, log, flush_log)
        code = proc.wait()
    finally:
        _stop(proc)
    if code != 0:
        raise DistributedTrainingError(
            f"distributed training failed: torchrun exited with status {code} "
            f"({cfg.distributed.nproc} x {cfg.distributed.backend}); see the workers' output")
    return _result(cfg, dataset_dir, run_dir / RESULT_NAME)


def _relay(proc: subprocess.Popen[str], log: MetricsLogger | None,
           flush_log: Callable[[], object] | None) -> None:
    """Log rank 0's metric lines (acknowledging each); pass other output through."""
    assert proc.stdout is not None and proc.stdin is not None
    for line in proc.stdout:
        if not line.startswith(PREFIX):
            sys.stdout.write(line)
            continue
        record = json.loads(line[len(PREFIX):])
        if log is not None:
            log(record["metrics"], int(record["step"]))
        if flush_log is not None:
            flush_log()
        proc.stdin.write("ok\n")
        proc.stdin.flush()


def _stop(proc: subprocess.Popen[str]) -> None:
    """End torchrun (it stops its workers on SIGTERM) if it is still running."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _result(cfg: TrainConfig, dataset_dir: Path, path: Path) -> TrainResult:
    import torch

    from mlpipe.ml.models import build_model
    from mlpipe.ml.preprocess import read_manifest
    from mlpipe.ml.training import TrainResult
    from mlpipe.ml.transforms import Preprocessing

    data = torch.load(path, map_location="cpu", weights_only=True)
    manifest = read_manifest(dataset_dir)
    prep = Preprocessing(**data["preprocessing"])
    model = build_model(cfg.model, in_channels=int(manifest["channels"]),
                        num_classes=len(manifest["classes"]), image_size=prep.image_size)
    model.load_state_dict(data["model"])
    if cfg.freeze_backbone:  # as trained: only the head was trainable
        for name, param in model.named_parameters():
            param.requires_grad = name in data["trainable"]
    ckpt = path.parents[1] / "last.pt"
    return TrainResult(model=model, history=data["history"], best_val_acc=data["best_val_acc"],
                       epochs_run=data["epochs_run"], resumed_from_epoch=data["resumed_from"],
                       stopped_early=data["stopped_early"], preprocessing=prep,
                       checkpoint_path=ckpt if ckpt.exists() else None)


def _ack_logger(metrics: dict[str, float], step: int) -> None:
    """Rank 0's ``log``: hand the metrics to the parent and wait until they are logged."""
    print(PREFIX + json.dumps({"metrics": metrics, "step": step}), flush=True)
    if sys.stdin.readline().strip() != "ok":
        raise DistributedTrainingError("the parent process stopped acknowledging metrics")


def main(argv: list[str] | None = None) -> None:
    """One torchrun worker (``python -m mlpipe.ml.distributed``)."""
    import torch
    import torch.distributed as dist

    from mlpipe.ml.models import pick_device
    from mlpipe.ml.training import train_rank

    parser = argparse.ArgumentParser(prog="mlpipe.ml.distributed")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args(argv)
    cfg = load_train_config(json.loads((args.run_dir / "config.json").read_text()))
    assert cfg.distributed is not None
    dist.init_process_group(backend=cfg.distributed.backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        if cfg.distributed.backend == "nccl":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        else:
            device = pick_device("cpu" if cfg.device == "auto" else cfg.device)
        result = train_rank(cfg, args.dataset, device, args.checkpoint_dir,
                            log=_ack_logger if rank == 0 else None, resume=not args.no_resume,
                            rank=rank, world_size=world)
        if rank == 0:
            _write_result(result, args.run_dir / RESULT_NAME)
        # Ranks leave together: a rank tearing gloo down while rank 0 still writes its result
        # was seen to abort ("terminate called without an active exception").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _write_result(result: TrainResult, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"model": result.model.state_dict(), "history": result.history,
                "best_val_acc": result.best_val_acc, "epochs_run": result.epochs_run,
                "resumed_from": result.resumed_from_epoch,
                "stopped_early": result.stopped_early,
                "preprocessing": asdict(result.preprocessing) if result.preprocessing else {},
                "trainable": [n for n, p in result.model.named_parameters()
                              if p.requires_grad]}, tmp)
    os.replace(tmp, path)


def all_sum(*values: float) -> list[float]:
    """``values`` added up over every DDP rank."""
    import torch
    import torch.distributed as dist

    summed = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(summed)
    return summed.tolist()


def from_rank0(*values: float) -> list[float]:
    """``values`` as rank 0 has them, on every DDP rank."""
    import torch
    import torch.distributed as dist

    data = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(data, src=0)
    return data.tolist()


if __name__ == "__main__":
    main()
