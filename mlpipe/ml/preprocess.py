"""Class-per-folder images in; resized, split, normalisable tensor shards and a manifest out.

Layout written by ``preprocess_images`` (and read by ``load_split``)::

    manifest.json             classes, sizes, mean/std (train split only), splits, corrupt files
    train/shard-00000.pt      torch.save({"x": uint8 NCHW, "y": int64 labels})
    val/...  test/...

Pixels are stored as uint8 (a quarter of the size of float32, and exact); ``load_split``
scales them to 0..1 and normalises them with the manifest's per-channel mean and std.

A file's split is chosen from the sha256 of its bytes and the seed alone, so adding files
never moves an existing file to another split, and the same inputs and seed always give
the same bytes out. Decoding runs in a process pool (Pillow, numpy); torch is imported
only where tensors are saved or loaded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpipe.errors import CorruptImageError, DatasetError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "IMAGE_SUFFIXES",
    "MANIFEST_NAME",
    "SPLITS",
    "CorruptImageError",
    "DatasetError",
    "PreprocessOptions",
    "decode_bytes",
    "load_split",
    "load_split_pixels",
    "normalise",
    "preprocess_images",
    "read_manifest",
    "split_of",
]

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")
SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.json"
FORMAT = "mlpipe.image-dataset/1"
_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


@dataclass(frozen=True)
class PreprocessOptions:
    """How images become tensors; ``image_size`` is (height, width)."""

    image_size: tuple[int, int] = (32, 32)
    grayscale: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    seed: int = 0
    num_workers: int | None = None
    on_corrupt: str = "skip"
    shard_size: int = 1024
    #: a cold worker pool costs ~1-2 s to start (a task process is always cold), about what
    #: decoding 2,500 small images takes: fewer files than this per worker use fewer workers
    #: (in-process below twice this many)
    min_files_per_worker: int = 2500


@dataclass(frozen=True)
class _Decoded:
    path: str  # relative to the source root, POSIX form: "<class>/<file>"
    sha256: str
    pixels: Any  # numpy uint8 (C, H, W), or None when the file could not be decoded
    error: str | None


def find_images(root: Path) -> tuple[list[str], list[str]]:
    """The class folders under ``root`` and the image files in them, both sorted.

    Hidden entries and files without an image suffix are ignored.
    """
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [
        f"{name}/{f.name}"
        for name in classes
        for f in sorted((root / name).iterdir())
        if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
    ]
    return classes, files


def split_of(sha256: str, *, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The split of a file with content hash ``sha256``: depends on nothing else but the seed."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def decode_image(root: str, size: tuple[int, int], grayscale: bool, relpath: str) -> _Decoded:
    """Read, hash, decode and resize one file (runs in a worker process)."""

    data = (Path(root) / relpath).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        pixels = decode_bytes(data, size, grayscale)
    except CorruptImageError as exc:
        return _Decoded(relpath, sha, None, exc.reason)
    return _Decoded(relpath, sha, pixels, None)


def decode_bytes(data: bytes, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    """One encoded image as uint8 (C, H, W), decoded and resized exactly as for training.

    Raises:
        CorruptImageError: the bytes are not a decodable image (``path`` is ``"<bytes>"``).
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            # JPEG: let the decoder scale down by 1/2..1/8 while decoding (never below the
            # target size), 2-3x faster for small targets; other formats ignore it.
            opened.draft("L" if grayscale else "RGB", (size[1], size[0]))
            opened.load()
            img = ImageOps.exif_transpose(opened).convert("L" if grayscale else "RGB")
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise CorruptImageError("<bytes>", "not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types for damaged files
        raise CorruptImageError("<bytes>", _ADDRESS.sub(
            "<data>", f"{type(exc).__name__}: {exc}")) from None
    pixels = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)


def normalise(x: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 NCHW pixels to float32 scaled to 0..1 and normalised per channel."""
    import torch

    c = x.shape[1]
    m = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)
    s = torch.where(s > 0, s, torch.ones_like(s))  # a constant channel stays 0
    return (x.float() / 255.0 - m) / s


def _decode_all(root: Path, files: list[str], options: PreprocessOptions) -> list[_Decoded]:
    work: Callable[[str], _Decoded] = functools.partial(
        decode_image, str(root), options.image_size, options.grayscale)
    requested = (os.cpu_count() or 1) if options.num_workers is None else options.num_workers
    per_worker = max(1, options.min_files_per_worker)
    workers = min(max(requested, 1), max(1, len(files) // per_worker))
    if workers <= 1:
        return [work(f) for f in files]
    chunk = max(1, len(files) // (workers * 4))
    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        return list(pool.map(work, files, chunksize=chunk))


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: forking a process that runs the engine's threads is unsafe."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    return multiprocessing.get_context("forkserver")


def preprocess_images(source: Path, dest: Path, options: PreprocessOptions) -> dict[str, Any]:
    """Turn the class-per-folder images under ``source`` into a data set under ``dest``.

    Returns:
        The manifest (also written to ``dest/manifest.json``).

    Raises:
        DatasetError: no class folders, no images, or no image in the train split.
        CorruptImageError: a file cannot be decoded and ``on_corrupt == "fail"``.
    """
    import numpy as np

    classes, files = find_images(source)
    if not files:
        raise DatasetError(
            f"no images under {str(source)!r}; expected one folder per class holding "
            f"{', '.join(IMAGE_SUFFIXES)} files")
    decoded = _decode_all(source, files, options)
    corrupt = [d for d in decoded if d.error is not None]
    if corrupt and options.on_corrupt == "fail":
        raise CorruptImageError(corrupt[0].path, corrupt[0].error or "")
    class_to_idx = {name: i for i, name in enumerate(classes)}
    by_split: dict[str, list[_Decoded]] = {s: [] for s in SPLITS}
    for item in decoded:
        if item.error is None:
            by_split[split_of(item.sha256, seed=options.seed, val_fraction=options.val_fraction,
                              test_fraction=options.test_fraction)].append(item)
    if not by_split["train"]:
        raise DatasetError(f"no decodable image under {str(source)!r} fell in the train split; "
                           "add images or lower val_fraction/test_fraction")
    channels = 1 if options.grayscale else 3
    train = np.stack([d.pixels for d in by_split["train"]])
    mean, std = channel_stats(train)
    dest.mkdir(parents=True, exist_ok=True)
    splits = {
        name: _write_split(dest, name, items, class_to_idx, options.shard_size)
        for name, items in by_split.items()
    }
    manifest = {
        "format": FORMAT,
        "classes": classes,
        "class_to_idx": class_to_idx,
        "image_size": list(options.image_size),
        "channels": channels,
        "layout": "NCHW",
        "dtype": "uint8",
        "mean": mean,
        "std": std,
        "seed": options.seed,
        "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "counts": {name: split["count"] for name, split in splits.items()},
        "total_files": len(files),
        "splits": splits,
        "corrupt": [{"path": d.path, "sha256": d.sha256, "error": d.error} for d in corrupt],
        "corrupt_count": len(corrupt),
    }
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 NCHW ``pixels`` scaled to 0..1 (exact integer sums)."""
    import numpy as np

    count = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    total = pixels.sum(axis=(0, 2, 3), dtype=np.uint64)
    squares = (pixels.astype(np.uint64) ** 2).sum(axis=(0, 2, 3), dtype=np.uint64)
    means, stds = [], []
    for s1, s2 in zip(total.tolist(), squares.tolist(), strict=True):
        mean = s1 / count
        variance = max(s2 / count - mean * mean, 0.0)
        means.append(mean / 255.0)
        stds.append(variance**0.5 / 255.0)
    return means, stds


def _write_split(dest: Path, name: str, items: Iterable[_Decoded],
                 class_to_idx: dict[str, int], shard_size: int) -> dict[str, Any]:
    import numpy as np
    import torch

    ordered = sorted(items, key=lambda d: d.path)
    labels = [class_to_idx[d.path.split("/", 1)[0]] for d in ordered]
    shards: list[str] = []
    if ordered:
        (dest / name).mkdir()
    for start in range(0, len(ordered), shard_size):
        block = ordered[start:start + shard_size]
        x = torch.from_numpy(np.stack([d.pixels for d in block]))
        y = torch.tensor(labels[start:start + shard_size], dtype=torch.long)
        rel = f"{name}/shard-{len(shards):05d}.pt"
        torch.save({"x": x, "y": y}, dest / rel)
        shards.append(rel)
    return {
        "count": len(ordered),
        "shards": shards,
        "files": [{"path": d.path, "sha256": d.sha256, "label": label}
                  for d, label in zip(ordered, labels, strict=True)],
    }


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
    """One split as tensors ready for training.

    Returns:
        ``x`` float32 NCHW normalised with the manifest's train mean/std, ``y`` int64
        labels (indices into ``manifest["classes"]``), and the manifest.
    """
    pixels, y, manifest = load_split_pixels(dataset_dir, split)
    return normalise(pixels, manifest["mean"], manifest["std"]), y, manifest


def load_split_pixels(dataset_dir: Path, split: str
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """One split as stored: uint8 NCHW pixels, int64 labels and the manifest."""
    import torch

    manifest = read_manifest(dataset_dir)
    if split not in manifest["splits"]:
        raise DatasetError(f"unknown split {split!r}; known: {sorted(manifest['splits'])}")
    xs, ys = [], []
    for rel in manifest["splits"][split]["shards"]:
        shard = torch.load(Path(dataset_dir) / rel, weights_only=True)
        xs.append(shard["x"])
        ys.append(shard["y"])
    c = int(manifest["channels"])
    h, w = manifest["image_size"]
    x = torch.cat(xs) if xs else torch.empty((0, c, h, w), dtype=torch.uint8)
    y = torch.cat(ys) if ys else torch.empty(0, dtype=torch.long)
    return x, y, manifest
