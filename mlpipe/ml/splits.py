"""Which images a data set holds, their classes, and which split each one belongs to.

Two input layouts:

- ``<root>/<class>/<file>``: the split of a file comes from a hash of its relative path
  and the seed alone, compared with per-class fractions (stratified: every class is split
  ``train/val/test`` in the same expected proportions). A file's split depends on nothing
  else, so adding images never moves an existing image to another split: nightly retraining
  on a growing bucket keeps its test set. The file's bytes are not read to decide it.
- ``<root>/{train,val,test}/<class>/<file>``: the user's own splits, used as given.

``split="auto"`` uses the second layout when the root holds a ``train/`` folder and
nothing but ``train/``, ``val/`` and ``test/`` folders, else the first; ``"folders"`` and
``"hash"`` force one. Files are found under each class folder at any depth, hidden entries
skipped, matched case-insensitively against ``include`` globs on the file name.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlpipe.errors import DatasetError

__all__ = ["DEFAULT_INCLUDE", "SPLITS", "SPLIT_MODES", "DatasetError", "ImageFile",
           "find_images", "split_of"]

SPLITS = ("train", "val", "test")
SPLIT_MODES = ("auto", "folders", "hash")
DEFAULT_INCLUDE = ("*.jpg", "*.jpeg", "*.png", "*.webp", "*.bmp")


@dataclass(frozen=True)
class ImageFile:
    """One input image: its path relative to the root (POSIX), class name and split."""

    path: str
    label: str
    split: str


def split_of(relpath: str, *, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The split of the file at ``relpath``: depends on nothing else but the seed."""
    u = _unit(f"split:{seed}:{relpath}")
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def order_key(relpath: str, seed: int) -> float:
    """A pseudo-random, stable position: shards written in this order mix the classes."""
    return _unit(f"order:{seed}:{relpath}")


def _unit(text: str) -> float:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def find_images(root: Path, *, include: Sequence[str] = DEFAULT_INCLUDE, split: str = "auto",
                seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.1
                ) -> tuple[list[str], list[ImageFile], str]:
    """The classes (sorted), the image files with their split, and the layout used
    (``"folders"`` or ``"hash"``).

    Raises:
        DatasetError: ``split`` is unknown, or ``"folders"`` without a ``train/`` folder.
    """
    if split not in SPLIT_MODES:
        raise DatasetError(f"split {split!r} is not one of {list(SPLIT_MODES)}")
    top = _folders(root)
    if split == "folders" and "train" not in top:
        raise DatasetError(f"split='folders' but {str(root)!r} has no train/ folder (expected "
                           "train/, val/ and test/ folders holding one folder per class)")
    patterns = [p.lower() for p in include]
    if split == "folders" or (split == "auto" and "train" in top and set(top) <= set(SPLITS)):
        files = [ImageFile(f"{name}/{cls}/{rel}", cls, name)
                 for name in SPLITS if name in top
                 for cls in _folders(root / name)
                 for rel in _files(root / name / cls, patterns)]
        classes = sorted({cls for name in SPLITS if name in top for cls in _folders(root / name)})
        return classes, files, "folders"
    files = [ImageFile(f"{cls}/{rel}", cls, split_of(f"{cls}/{rel}", seed=seed,
                                                     val_fraction=val_fraction,
                                                     test_fraction=test_fraction))
             for cls in top for rel in _files(root / cls, patterns)]
    return top, files, "hash"


def _folders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path, patterns: list[str]) -> list[str]:
    """Files under ``folder`` (any depth, hidden skipped) whose name matches a pattern."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if any(fnmatch.fnmatchcase(path.name.lower(), p) for p in patterns):
            found.append(rel.as_posix())
    return sorted(found)
