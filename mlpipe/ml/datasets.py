"""Small real data sets that need no internet, written in the layouts the operators read."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_digits_pngs"]


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
