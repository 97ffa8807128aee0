"""``write_digits_pngs``: scikit-learn's digits as class-per-folder PNGs, no internet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from mlpipe.ml.datasets import write_digits_pngs


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
