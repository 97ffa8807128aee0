"""Streaming reads of a preprocessed data set: a Dataset over its shards, and a sampler.

``ShardDataset`` memory-maps one shard at a time (a small LRU of open shards per process),
so the pages of a split are read on demand and dropped by the OS under pressure: peak RSS
does not grow with the split. ``ShardShuffleSampler`` shuffles the order of the shards, then
the samples within each shard, so reads stay sequential within a shard; the order depends
only on (seed, epoch), and it partitions the samples across DDP ranks (the same count on
every rank).
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.ml.preprocess import FORMAT, MANIFEST_NAME, SPLITS, DatasetError, read_manifest

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Normalise", "ShardDataset", "ShardShuffleSampler", "predict_split",
           "split_stats", "stream_batches", "write_arrays"]

#: open (memory-mapped) shards kept per process
OPEN_SHARDS = 4


class Normalise:
    """uint8 CHW (or NCHW) pixels to float32 in 0..1, normalised per channel (picklable)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = [float(m) for m in mean]
        self.std = [float(s) if s > 0 else 1.0 for s in std]  # a constant channel stays 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        shape = (-1, 1, 1)
        m = torch.tensor(self.mean, dtype=torch.float32).view(shape)
        s = torch.tensor(self.std, dtype=torch.float32).view(shape)
        return (x.float() / 255.0 - m) / s


def split_stats(manifest: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The per-channel mean and std (pixels scaled to 0..1) of the train split."""
    return [float(v) for v in manifest["mean"]], [float(v) for v in manifest["std"]]


class ShardDataset:
    """One split of a data set as a map-style torch Dataset: ``(uint8 CHW tensor, label)``.

    ``transform`` (if given) is applied to the uint8 tensor. ``targets`` and ``len`` come
    from the manifest: no pixel is read until an item is asked for.
    """

    def __init__(self, dataset_dir: Path | str, split: str,
                 transform: Callable[[torch.Tensor], Any] | None = None) -> None:
        self.root = Path(dataset_dir)
        self.manifest = read_manifest(self.root)
        if split not in self.manifest["splits"]:
            raise DatasetError(f"unknown split {split!r}; known: "
                               f"{sorted(self.manifest['splits'])}")
        info = self.manifest["splits"][split]
        self.split = split
        self.transform = transform
        self.classes: list[str] = [str(c) for c in self.manifest["classes"]]
        self.targets: list[int] = [int(f["label"]) for f in info["files"]]
        self.shards: list[str] = list(info["shards"])
        counts = info.get("shard_counts") or [self.open_shard(i).shape[0]
                                              for i in range(len(self.shards))]
        self.starts: list[int] = [0]
        for count in counts:
            self.starts.append(self.starts[-1] + int(count))
        if self.starts[-1] != len(self.targets):
            raise DatasetError(f"split {split!r} of {str(self.root)!r}: the shards hold "
                               f"{self.starts[-1]} images, the manifest lists "
                               f"{len(self.targets)}")
        self._cache: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self.targets)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # workers open their own maps
        return state

    def shard_ranges(self) -> list[range]:
        """The sample indices of each shard, in shard order."""
        return [range(a, b) for a, b in zip(self.starts, self.starts[1:], strict=False)]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        shard = bisect.bisect_right(self.starts, index) - 1
        x = self._shard(shard)
        pixels = torch.from_numpy(x[index - self.starts[shard]].copy())
        label = self.targets[index]
        return (self.transform(pixels) if self.transform else pixels), label

    def _shard(self, i: int) -> Any:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        opened = self.open_shard(i)
        self._cache[i] = opened
        if len(self._cache) > OPEN_SHARDS:
            self._cache.popitem(last=False)
        return opened

    def open_shard(self, i: int) -> np.ndarray:
        """The pixels of shard ``i`` (N x C x H x W uint8), memory-mapped, not read."""
        import numpy as np
        import torch

        path = self.root / self.shards[i]
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="r")
        return torch.load(path, mmap=True, weights_only=True)["x"].numpy()


class ShardShuffleSampler:
    """Shard order shuffled, then samples within each shard; deterministic per (seed, epoch).

    With ``world_size > 1`` the order is padded (wrapping around) to a multiple of
    ``world_size`` and rank ``r`` takes the ``r``-th contiguous block, so every rank yields
    the same number of samples and reads few shards.
    """

    def __init__(self, dataset: ShardDataset, *, seed: int, epoch: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise DatasetError(f"rank {rank} is not in a world of size {world_size}")
        self.ranges = dataset.shard_ranges()
        self.total = len(dataset)
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.total // self.world_size)

    def order(self) -> list[int]:
        """All sample indices in this epoch's order (before the split across ranks)."""
        import numpy as np

        rng = np.random.default_rng([self.seed, self.epoch])
        out: list[int] = []
        for shard in rng.permutation(len(self.ranges)).tolist():
            r = self.ranges[shard]
            out.extend((rng.permutation(len(r)) + r.start).tolist())
        return out

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        per_rank = len(self)
        if order and len(order) < per_rank * self.world_size:
            order = (order * self.world_size)[:per_rank * self.world_size]
        return iter(order[self.rank * per_rank:(self.rank + 1) * per_rank])


def stream_batches(dataset_dir: Path | str, split: str, batch_size: int = 512, *,
                   transform: Any = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A split in order, as (normalised float32 NCHW, int64 labels) batches.

    ``transform``: the model's own evaluation transform (``ModelSpec.transform()``); by
    default the split's pixels normalised with the train split's statistics.
    """
    from torch.utils.data import DataLoader

    dataset = ShardDataset(dataset_dir, split)
    dataset.transform = transform or Normalise(*split_stats(dataset.manifest))
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=False)


def predict_split(model: Any, dataset_dir: Path | str, split: str, batch_size: int = 512, *,
                  transform: Any = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """True and predicted labels of a split, streamed batch by batch, and the manifest."""
    import numpy as np
    import torch

    truth, predicted = [], []
    with torch.no_grad():
        for x, y in stream_batches(dataset_dir, split, batch_size, transform=transform):
            truth.append(y.numpy())
            predicted.append(model(x).argmax(dim=1).numpy())
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(truth) if truth else empty,
            np.concatenate(predicted) if predicted else empty, read_manifest(Path(dataset_dir)))


def write_arrays(dest: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                 classes: Sequence[str], *, shard_size: int = 1024) -> dict[str, Any]:
    """A data set from in-memory uint8 NCHW arrays and labels (tests, converters).

    Statistics come from the train split. Returns the manifest written.
    """
    import numpy as np

    x0 = splits["train"][0]
    pixels = x0.astype(np.float64) / 255.0
    mean = pixels.mean(axis=(0, 2, 3)).tolist()
    std = pixels.std(axis=(0, 2, 3)).tolist()
    info: dict[str, Any] = {}
    for name in SPLITS:
        x, y = splits.get(name, (np.zeros((0, *x0.shape[1:]), np.uint8), np.zeros(0, int)))
        shards, counts = [], []
        for i, start in enumerate(range(0, len(x), shard_size)):
            rel = f"{name}/shard-{i:05d}.npy"
            (dest / name).mkdir(parents=True, exist_ok=True)
            np.save(dest / rel, np.ascontiguousarray(x[start:start + shard_size], np.uint8))
            shards.append(rel)
            counts.append(min(shard_size, len(x) - start))
        info[name] = {"count": len(x), "shards": shards, "shard_counts": counts,
                      "files": [{"path": f"{name}/{i}", "label": int(v)}
                                for i, v in enumerate(y)]}
    manifest = {"format": FORMAT, "classes": list(classes),
                "class_to_idx": {c: i for i, c in enumerate(classes)},
                "image_size": list(x0.shape[2:]), "channels": int(x0.shape[1]),
                "layout": "NCHW", "dtype": "uint8", "mean": mean, "std": std,
                "counts": {k: v["count"] for k, v in info.items()}, "splits": info,
                "corrupt": [], "corrupt_count": 0}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
