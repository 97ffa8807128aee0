"""Real data sets that need no internet, written in the layouts the operators read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR", "read_idx", "write_digits_pngs",
           "write_fashion_mnist_pngs"]


def write_digits_pngs(dest: Path, *, limit: int | None = None) -> dict[str, int]:
    """Write scikit-learn's 8x8 handwritten digits as grayscale PNGs, one folder per class.

    The images ship with scikit-learn (no download). Pixel values 0..16 are scaled to
    0..255. Files are ``dest/<digit>/<index>.png`` with the sample's index zero-padded to
    four digits, so the same call always writes the same bytes.

    Args:
        dest: The root folder (created if missing).
        limit: Write only the first ``limit`` samples (all 1,797 when None).

    Returns:
        The number of images written per class, keyed by the digit as a string.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    targets = digits.target
    count = len(images) if limit is None else max(0, min(limit, len(images)))
    counts: dict[str, int] = {}
    for index in range(count):
        label = str(int(targets[index]))
        folder = Path(dest) / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(folder / f"{index:04d}.png")
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: int(item[0])))


#: where Debian's ``dataset-fashion-mnist`` package installs the IDX files
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: label index -> class folder name (Zalando's names, made file-name safe)
FASHION_MNIST_CLASSES = ("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal",
                         "shirt", "sneaker", "bag", "ankle_boot")


def read_idx(path: Path) -> Any:
    """An IDX file (``.gz`` or plain) as a numpy array: MNIST's format (uint8 data only).

    Raises:
        DatasetError: the file is missing or is not uint8 IDX data.
    """
    import gzip

    import numpy as np

    from mlpipe.ml.splits import DatasetError

    if not Path(path).is_file():
        raise DatasetError(f"{str(path)!r} does not exist; install Debian's "
                           "dataset-fashion-mnist package (apt-get install -y "
                           "dataset-fashion-mnist) or pass the folder holding the IDX files")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype, ndim = data[0:2], data[2], data[3]
    if zero != b"\0\0" or dtype != 0x08:
        raise DatasetError(f"{str(path)!r} is not an IDX file of uint8 data")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_fashion_mnist_pngs(dest: Path, *, source: Path = FASHION_MNIST_DIR,
                             limit: int | None = None, val_count: int = 10_000
                             ) -> dict[str, int]:
    """Write Fashion-MNIST (70,000 28x28 grayscale photos of clothes) as PNG class folders.

    Layout ``dest/{train,val,test}/<class>/<index>.png``: ``test`` is the official 10,000
    test images, ``val`` the last ``val_count`` of the official 60,000 training images and
    ``train`` the rest, so ``ImagePreprocessOperator`` uses these splits as given and test
    accuracy is comparable with published results. Idempotent: the same bytes every time.

    Args:
        dest: The root folder (created if missing).
        source: The folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
        limit: Write only the first ``limit`` images of each official set (all when None);
            ``val`` then gets a proportional share.

    Returns:
        The number of images written per split.
    """
    from PIL import Image

    counts: dict[str, int] = {}
    for official, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")
        count = len(images) if limit is None else max(0, min(limit, len(images)))
        holdout = round(count * val_count / len(images)) if official == "train" else 0
        for index in range(count):
            split = "val" if index >= count - holdout else official
            folder = Path(dest) / split / FASHION_MNIST_CLASSES[int(labels[index])]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index]).save(folder / f"{prefix}-{index:05d}.png")
            counts[split] = counts.get(split, 0) + 1
    return counts
