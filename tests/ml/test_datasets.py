"""``write_digits_pngs`` and ``write_fashion_mnist_pngs``: real images as class folders."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from mlpipe.ml.datasets import (
    FASHION_MNIST_CLASSES,
    read_idx,
    write_digits_pngs,
    write_fashion_mnist_pngs,
)
from mlpipe.ml.splits import DatasetError, find_images


def test_all_1797_digits_are_written_in_ten_class_folders(tmp_path: Path) -> None:
    counts = write_digits_pngs(tmp_path / "digits")

    assert list(counts) == [str(d) for d in range(10)]
    assert sum(counts.values()) == 1797
    files = sorted((tmp_path / "digits").glob("*/*.png"))
    assert len(files) == 1797
    assert {f.parent.name: 0 for f in files}.keys() == counts.keys()
    with Image.open(tmp_path / "digits" / "0" / "0000.png") as img:
        assert (img.size, img.mode) == ((8, 8), "L")
        pixels = np.asarray(img)
    expected = np.rint(load_digits().images[0] * 255 / 16)  # 0..16 scaled to 0..255
    assert pixels.tolist() == expected.astype(np.uint8).tolist()


def test_limit_writes_the_first_samples_and_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = write_digits_pngs(tmp_path / "a", limit=12)
    second = write_digits_pngs(tmp_path / "b", limit=12)

    assert first == second and sum(first.values()) == 12
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").glob("*/*.png"))
    assert names == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").glob("*/*.png"))
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) in MNIST's IDX format, gzipped as Debian ships it."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_files(tmp_path: Path) -> Path:
    """A miniature Fashion-MNIST in the package's file layout: 20 train, 5 test images."""
    root = tmp_path / "fashion"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 5)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz",
                   rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def test_fashion_mnist_becomes_train_val_test_class_folders(fashion_files: Path,
                                                            tmp_path: Path) -> None:
    counts = write_fashion_mnist_pngs(tmp_path / "out", source=fashion_files, val_count=5)
    assert counts == {"train": 15, "val": 5, "test": 5}  # the last 5 training images: val
    half = write_fashion_mnist_pngs(tmp_path / "half", source=fashion_files, val_count=5,
                                    limit=8)
    assert half == {"train": 6, "val": 2, "test": 5}  # val keeps its share of the limit
    images = read_idx(fashion_files / "train-images-idx3-ubyte.gz")
    assert images.shape == (20, 28, 28)
    with Image.open(tmp_path / "out" / "train" / FASHION_MNIST_CLASSES[3] /
                    "train-00003.png") as img:
        assert np.asarray(img).tolist() == images[3].tolist()
    assert (tmp_path / "out" / "val" / FASHION_MNIST_CLASSES[9] / "train-00019.png").is_file()
    assert (tmp_path / "out" / "test" / FASHION_MNIST_CLASSES[0] / "t10k-00000.png").is_file()
    _, files, layout = find_images(tmp_path / "out")
    assert layout == "folders" and len(files) == 25


def test_a_missing_or_foreign_idx_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"does not exist; install Debian's "
                                           r"dataset-fashion-mnist"):
        write_fashion_mnist_pngs(tmp_path / "out", source=tmp_path / "nowhere")
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    with pytest.raises(DatasetError, match=r"is not an IDX file of uint8 data"):
        read_idx(tmp_path / "x.gz")
