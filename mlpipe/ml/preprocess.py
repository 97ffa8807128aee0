"""Class-per-folder images in; resized, split uint8 shards and a manifest out, streamed.

Layout written by ``preprocess_images`` (read by ``mlpipe.ml.shards.ShardDataset``)::

    manifest.json             classes, sizes, mean/std (train split only), splits, corrupt files
    train/shard-00000.npy     uint8 N x C x H x W (numpy .npy: memory-mappable)
    val/...  test/...

Which files and which split: ``mlpipe.ml.splits`` (user ``train/ val/ test/`` folders, or a
stable per-file hash). Decoding and resizing (``mlpipe.ml.images``) run in a process pool
fed a bounded number of small batches at a time; the parent takes the results in order and
copies each image into the shard being filled, written as soon as it holds ``shard_mb`` MB
(or ``shard_size`` images). Peak memory is one shard plus the batches in flight per worker,
whatever the number of images; nothing is ever converted to float32 here (normalisation is
the training transform's job). The train split's per-channel mean and std come from per-channel
histograms of the 256 levels the workers return with each image (exact integer counts,
summed in the same pass; no float copy of any image). Within a split, images are
written in a stable pseudo-random order, so every shard mixes the classes. The same inputs
and options always give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.ml.images import MAX_PIXELS, RESIZE_MODES, CorruptImageError, decode_bytes
from mlpipe.ml.splits import (
    DEFAULT_INCLUDE,
    SPLITS,
    DatasetError,
    ImageFile,
    find_images,
    order_key,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "DEFAULT_INCLUDE",
    "MANIFEST_NAME",
    "SPLITS",
    "CorruptImageError",
    "DatasetError",
    "PreprocessOptions",
    "channel_stats",
    "decode_bytes",
    "load_split",
    "load_split_pixels",
    "normalise",
    "preprocess_images",
    "read_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT = "mlpipe.image-dataset/2"
#: decoded bytes per batch sent to a worker (bounds the memory of results in flight)
BATCH_BYTES = 4 * 2**20


@dataclass(frozen=True)
class PreprocessOptions:
    """How images become shards; ``image_size`` is (height, width)."""

    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    seed: int = 0
    num_workers: int | None = None
    on_corrupt: str = "skip"
    shard_size: int = 1024
    shard_mb: float = 64.0
    resize: str = "shorter_side"
    include: tuple[str, ...] = DEFAULT_INCLUDE
    split: str = "auto"
    max_pixels: int = MAX_PIXELS
    #: a cold worker pool costs ~1-2 s to start (a task process is always cold), about what
    #: decoding 2,500 small images takes: fewer files than this per worker use fewer workers
    #: (in-process below twice this many)
    min_files_per_worker: int = 2500

    @property
    def image_bytes(self) -> int:
        return (1 if self.grayscale else 3) * self.image_size[0] * self.image_size[1]


@dataclass(frozen=True)
class _Decoded:
    path: str
    sha256: str
    pixels: Any  # numpy uint8 (C, H, W), or None when the file could not be decoded
    error: str | None
    histogram: Any = None  # int64 (C, 256): how many pixels of each channel have each level


def decode_batch(root: str, options: PreprocessOptions, relpaths: Sequence[str]
                 ) -> list[_Decoded]:
    """Read, hash, decode and resize some files, with their level histograms (in a worker)."""
    import numpy as np

    out = []
    for relpath in relpaths:
        data = (Path(root) / relpath).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        try:
            pixels = decode_bytes(data, options.image_size, options.grayscale,
                                  options.resize, options.max_pixels)
        except CorruptImageError as exc:
            out.append(_Decoded(relpath, sha, None, exc.reason))
            continue
        histogram = np.stack([np.bincount(channel.ravel(), minlength=256)
                              for channel in pixels])
        out.append(_Decoded(relpath, sha, pixels, None, histogram))
    return out


def _workers(count: int, options: PreprocessOptions) -> int:
    requested = (os.cpu_count() or 1) if options.num_workers is None else options.num_workers
    per_worker = max(1, options.min_files_per_worker)
    return min(max(requested, 1), max(1, count // per_worker))


def _decode_in_order(root: Path, files: list[str], options: PreprocessOptions
                     ) -> Iterator[_Decoded]:
    """Every file decoded, in order; at most two batches per worker in flight."""
    work = functools.partial(decode_batch, str(root), options)
    workers = _workers(len(files), options)
    size = max(1, min(64, BATCH_BYTES // options.image_bytes,
                      len(files) // (workers * 4) or 1))
    batches = (files[i:i + size] for i in range(0, len(files), size))
    if workers <= 1:
        for batch in batches:
            yield from work(batch)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
    try:
        pending = deque(pool.submit(work, b) for _, b in zip(range(2 * workers), batches,
                                                               strict=False))
        while pending:
            done = pending.popleft().result()
            batch = next(batches, None)
            if batch is not None:
                pending.append(pool.submit(work, batch))
            yield from done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: forking a process that runs the engine's threads is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("forkserver")


class _ShardWriter:
    """Fills one preallocated uint8 shard at a time and writes it when it is full."""

    def __init__(self, dest: Path, split: str, shape: tuple[int, ...], capacity: int) -> None:
        self.dest, self.split, self.shape, self.capacity = dest, split, shape, capacity
        self.buffer: Any = None
        self.filled = 0
        self.shards: list[str] = []
        self.counts: list[int] = []
        self.files: list[dict[str, Any]] = []

    def add(self, item: _Decoded, label: int) -> None:
        import numpy as np

        if self.buffer is None:
            self.buffer = np.empty((self.capacity, *self.shape), dtype=np.uint8)
        self.buffer[self.filled] = item.pixels
        self.filled += 1
        self.files.append({"path": item.path, "sha256": item.sha256, "label": label})
        if self.filled == self.capacity:
            self.flush()

    def flush(self) -> None:
        import numpy as np

        if not self.filled:
            return
        rel = f"{self.split}/shard-{len(self.shards):05d}.npy"
        (self.dest / self.split).mkdir(parents=True, exist_ok=True)
        np.save(self.dest / rel, self.buffer[:self.filled])
        self.shards.append(rel)
        self.counts.append(self.filled)
        self.filled = 0

    def summary(self) -> dict[str, Any]:
        self.flush()
        self.buffer = None
        return {"count": len(self.files), "shards": self.shards, "shard_counts": self.counts,
                "files": self.files}


def preprocess_images(source: Path, dest: Path, options: PreprocessOptions) -> dict[str, Any]:
    """Turn the images under ``source`` into a data set under ``dest`` (see the module doc).

    Returns:
        The manifest (also written to ``dest/manifest.json``).

    Raises:
        DatasetError: no class folders, no images, or no image in the train split.
        CorruptImageError: a file cannot be decoded and ``on_corrupt == "fail"``.
    """
    if options.resize not in RESIZE_MODES:
        raise DatasetError(f"resize {options.resize!r} is not one of {list(RESIZE_MODES)}")
    classes, files, layout = find_images(
        Path(source), include=options.include, split=options.split, seed=options.seed,
        val_fraction=options.val_fraction, test_fraction=options.test_fraction)
    if not files:
        raise DatasetError(f"no images under {str(source)!r}; expected one folder per class "
                           f"holding {', '.join(options.include)} files")
    if not any(f.split == "train" for f in files):
        raise DatasetError(f"no image under {str(source)!r} fell in the train split; add "
                           "images or lower val_fraction/test_fraction")
    ordered = sorted(files, key=lambda f: (SPLITS.index(f.split),
                                           order_key(f.path, options.seed), f.path))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    splits, corrupt, (mean, std) = _write_splits(Path(source), dest, ordered, classes, options)
    manifest = {
        "format": FORMAT, "classes": classes,
        "class_to_idx": {name: i for i, name in enumerate(classes)},
        "image_size": list(options.image_size), "channels": 1 if options.grayscale else 3,
        "layout": "NCHW", "dtype": "uint8", "mean": mean, "std": std,
        "resize": options.resize, "split_layout": layout, "include": list(options.include),
        "seed": options.seed, "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "counts": {name: split["count"] for name, split in splits.items()},
        "total_files": len(files), "splits": splits,
        "corrupt": sorted(corrupt, key=lambda c: c["path"]), "corrupt_count": len(corrupt),
    }
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_splits(source: Path, dest: Path, ordered: list[ImageFile], classes: list[str],
                  options: PreprocessOptions
                  ) -> tuple[dict[str, Any], list[dict[str, Any]], tuple[list[float], ...]]:
    """Decode ``ordered`` (split by split) into shards; the splits, corrupt files, stats."""
    import numpy as np

    channels = 1 if options.grayscale else 3
    shape = (channels, *options.image_size)
    capacity = max(1, min(options.shard_size,
                          int(options.shard_mb * 2**20) // options.image_bytes))
    writers = {name: _ShardWriter(dest, name, shape, capacity) for name in SPLITS}
    index = {name: i for i, name in enumerate(classes)}
    by_path = {f.path: f for f in ordered}
    histogram = np.zeros((channels, 256), dtype=np.int64)
    corrupt: list[dict[str, Any]] = []
    current = None
    for item in _decode_in_order(source, [f.path for f in ordered], options):
        file = by_path[item.path]
        if current is not None and current != file.split:
            writers[current].flush()  # one shard buffer in memory at a time
            writers[current].buffer = None
        current = file.split
        if item.error is not None:
            if options.on_corrupt == "fail":
                raise CorruptImageError(item.path, item.error)
            corrupt.append({"path": item.path, "sha256": item.sha256, "error": item.error})
            continue
        writers[file.split].add(item, index[file.label])
        if file.split == "train":
            histogram += item.histogram
    splits = {name: writer.summary() for name, writer in writers.items()}
    if not splits["train"]["count"]:
        raise DatasetError(f"no decodable image under {str(source)!r} in the train split")
    levels = np.arange(256, dtype=np.int64)
    return splits, corrupt, _stats(histogram @ levels, histogram @ levels**2,
                                   splits["train"]["count"] * shape[1] * shape[2])


def _stats(sums: Any, squares: Any, count: int) -> tuple[list[float], list[float]]:
    """Mean and std per channel, scaled to 0..1, from integer sums of levels and squares."""
    means, stds = [], []
    for s1, s2 in zip(sums.tolist(), squares.tolist(), strict=True):
        mean = s1 / count
        means.append(mean / 255.0)
        stds.append(max(s2 / count - mean * mean, 0.0) ** 0.5 / 255.0)
    return means, stds


def channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 NCHW ``pixels`` scaled to 0..1 (exact integer sums)."""
    import numpy as np

    count = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    total = pixels.sum(axis=(0, 2, 3), dtype=np.uint64)
    squares = (pixels.astype(np.uint64) ** 2).sum(axis=(0, 2, 3), dtype=np.uint64)
    return _stats(total, squares, count)


def normalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 NCHW pixels to float32 scaled to 0..1 and normalised per channel."""
    from mlpipe.ml.shards import Normalise

    return Normalise(mean, std)(x)


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """The manifest of the data set in ``dataset_dir``."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} does not exist; is {str(dataset_dir)!r} a data set "
                           "written by ImagePreprocessOperator?")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def load_split(dataset_dir: Path, split: str
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """One whole split in memory, normalised (small data sets and tests; training streams).

    Returns:
        ``x`` float32 NCHW normalised with the manifest's train mean/std, ``y`` int64
        labels (indices into ``manifest["classes"]``), and the manifest.
    """
    pixels, y, manifest = load_split_pixels(dataset_dir, split)
    return normalise(pixels, manifest["mean"], manifest["std"]), y, manifest


def load_split_pixels(dataset_dir: Path, split: str
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """One whole split as stored: uint8 NCHW pixels, int64 labels and the manifest."""
    import numpy as np
    import torch

    from mlpipe.ml.shards import ShardDataset

    dataset = ShardDataset(dataset_dir, split)
    c, (h, w) = int(dataset.manifest["channels"]), dataset.manifest["image_size"]
    arrays = [np.asarray(dataset.open_shard(i)) for i in range(len(dataset.shards))]
    x = torch.from_numpy(np.concatenate(arrays)) if arrays \
        else torch.empty((0, c, h, w), dtype=torch.uint8)
    return x, torch.tensor(dataset.targets, dtype=torch.long), dataset.manifest
