"""``preprocess_images`` and ``load_split``: splits, statistics, formats and corrupt files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, features

from mlpipe.artifacts import open_store
from mlpipe.ml.datasets import write_digits_pngs
from mlpipe.ml.preprocess import (
    CorruptImageError,
    DatasetError,
    PreprocessOptions,
    channel_stats,
    load_split,
    load_split_pixels,
    preprocess_images,
)

# Two real worker processes even for 300 files (the default would decode them in-process).
DIGITS_16 = PreprocessOptions(image_size=(16, 16), grayscale=True, num_workers=2,
                              min_files_per_worker=1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 real digits, class-per-folder (shared: tests copy it before changing it)."""
    root = tmp_path_factory.mktemp("digits300")
    write_digits_pngs(root, limit=300)
    return root


@pytest.fixture(scope="module")
def dataset(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 300 digits preprocessed to 16x16 grayscale with two worker processes."""
    out = tmp_path_factory.mktemp("dataset300") / "dataset"
    preprocess_images(digits, out, DIGITS_16)
    return out


def _raw(dataset: Path, split: str) -> torch.Tensor:
    """The stored uint8 pixels of a split, without normalisation."""
    return load_split_pixels(dataset, split)[0]


def _split_of_each_file(manifest: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: name for name, split in manifest["splits"].items()
            for f in split["files"]}


def test_splits_are_about_70_20_10_percent(dataset: Path) -> None:
    _, _, manifest = load_split(dataset, "train")
    counts = manifest["counts"]

    assert sum(counts.values()) == 300 and manifest["corrupt_count"] == 0
    assert 0.60 <= counts["train"] / 300 <= 0.80
    assert 0.13 <= counts["val"] / 300 <= 0.27
    assert 0.05 <= counts["test"] / 300 <= 0.15
    assert manifest["classes"] == [str(d) for d in range(10)]
    assert manifest["class_to_idx"]["7"] == 7
    assert (manifest["image_size"], manifest["channels"]) == ([16, 16], 1)


def test_load_split_gives_normalised_nchw_floats_and_long_labels(dataset: Path) -> None:
    for split in ("train", "val", "test"):
        x, y, manifest = load_split(dataset, split)
        n = manifest["counts"][split]
        assert x.shape == (n, 1, 16, 16) and x.dtype == torch.float32
        assert y.shape == (n,) and y.dtype == torch.long
        assert int(y.min()) >= 0 and int(y.max()) <= 9
        labels = [manifest["class_to_idx"][f["path"].split("/")[0]]
                  for f in manifest["splits"][split]["files"]]
        assert y.tolist() == labels


def test_mean_and_std_come_from_the_train_split_only(dataset: Path) -> None:
    x, _, manifest = load_split(dataset, "train")
    train_mean, train_std = channel_stats(_raw(dataset, "train").numpy())
    everything = torch.cat([_raw(dataset, s) for s in ("train", "val", "test")]).numpy()
    all_mean, all_std = channel_stats(everything)

    assert manifest["mean"] == pytest.approx(train_mean) and manifest["std"] == pytest.approx(
        train_std)
    assert manifest["mean"][0] != pytest.approx(all_mean[0], abs=1e-6)
    assert manifest["std"][0] != pytest.approx(all_std[0], abs=1e-6)
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(x.std(correction=0)) == pytest.approx(1.0, abs=1e-4)


def test_the_same_inputs_and_seed_give_the_same_bytes(digits: Path, dataset: Path,
                                                      tmp_path: Path) -> None:
    again = tmp_path / "again"
    preprocess_images(digits, again, PreprocessOptions(image_size=(16, 16), grayscale=True,
                                                       num_workers=0))

    def tree_hash(path: Path) -> str:
        return open_store(path.as_uri()).stat(path.as_uri()).sha256

    assert tree_hash(again) == tree_hash(dataset)
    other_seed = tmp_path / "seed1"
    preprocess_images(digits, other_seed, PreprocessOptions(
        image_size=(16, 16), grayscale=True, num_workers=0, seed=1))
    assert tree_hash(other_seed) != tree_hash(dataset)


def test_existing_files_keep_their_split_when_files_are_added(
        digits: Path, dataset: Path, tmp_path: Path) -> None:
    more = tmp_path / "more"
    shutil.copytree(digits, more)
    write_digits_pngs(tmp_path / "320", limit=320)
    added = [p for p in (tmp_path / "320").glob("*/*.png") if int(p.stem) >= 300]
    for path in added:
        shutil.copy(path, more / path.parent.name / path.name)
    assert len(added) == 20

    before = _split_of_each_file(load_split(dataset, "train")[2])
    after = _split_of_each_file(preprocess_images(more, tmp_path / "out", DIGITS_16))

    assert len(after) == 320
    assert {path: after[path] for path in before} == before


def _write_colour_images(root: Path) -> None:
    red, blue = (220, 20, 20), (20, 20, 220)
    for name, colour in (("red", red), ("blue", blue)):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (20, 12), colour).save(root / name / "a.png")
        Image.new("RGB", (9, 9), colour).save(root / name / "b.jpg", quality=95)
        Image.new("RGBA", (10, 10), (*colour, 255)).save(root / name / "c.png")
        if features.check("webp"):
            Image.new("RGB", (16, 16), colour).save(root / name / "d.webp", lossless=True)
    Image.new("L", (8, 8), 128).save(root / "red" / "gray.png")


def test_rgb_jpeg_webp_and_grayscale_inputs_become_three_channels(tmp_path: Path) -> None:
    _write_colour_images(tmp_path / "colours")
    manifest = preprocess_images(tmp_path / "colours", tmp_path / "out", PreprocessOptions(
        image_size=(8, 8), val_fraction=0.0, test_fraction=0.0, num_workers=0))

    total = len(list((tmp_path / "colours").glob("*/*")))
    assert manifest["counts"] == {"train": total, "val": 0, "test": 0}
    assert manifest["channels"] == 3 and len(manifest["mean"]) == 3
    raw = _raw(tmp_path / "out", "train")
    assert raw.shape == (total, 3, 8, 8)
    files = [f["path"] for f in manifest["splits"]["train"]["files"]]
    for index, path in enumerate(files):
        pixel = raw[index, :, 4, 4].tolist()
        if path.startswith("red/") and "gray" not in path:
            assert pixel[0] > 180 and pixel[2] < 60, path
        elif path.startswith("blue/"):
            assert pixel[2] > 180 and pixel[0] < 60, path
    x, _, _ = load_split(tmp_path / "out", "val")
    assert x.shape == (0, 3, 8, 8)


def _with_corrupt_files(digits: Path, root: Path) -> Path:
    for path in sorted(digits.glob("*/*.png"))[:40]:
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / path.parent.name / path.name)
    good = (root / "0" / "0000.png").read_bytes()
    (root / "0" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "1" / "x.png").write_text("this is not an image\n")
    return root


def test_corrupt_files_are_skipped_and_counted(digits: Path, tmp_path: Path) -> None:
    source = _with_corrupt_files(digits, tmp_path / "src")
    manifest = preprocess_images(source, tmp_path / "out", DIGITS_16)

    assert manifest["corrupt_count"] == 2
    assert [c["path"] for c in manifest["corrupt"]] == ["0/truncated.png", "1/x.png"]
    assert manifest["corrupt"][1]["error"] == "not a recognised image format"
    assert sum(manifest["counts"].values()) == 40 and manifest["total_files"] == 42


def test_on_corrupt_fail_names_the_file(digits: Path, tmp_path: Path) -> None:
    source = _with_corrupt_files(digits, tmp_path / "src")
    (source / "0" / "truncated.png").unlink()
    options = PreprocessOptions(image_size=(8, 8), num_workers=0, on_corrupt="fail")

    with pytest.raises(CorruptImageError, match=r"corrupt image '1/x\.png'.*on_corrupt='skip'"):
        preprocess_images(source, tmp_path / "out", options)


def test_no_images_and_unknown_split_are_explained(dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images under"):
        preprocess_images(tmp_path / "empty", tmp_path / "out", DIGITS_16)
    with pytest.raises(DatasetError, match=r"unknown split 'dev'; known: \['test', 'train'"):
        load_split(dataset, "dev")
    with pytest.raises(DatasetError, match=r"manifest\.json' does not exist"):
        load_split(tmp_path, "train")


def test_channel_stats_are_exact_on_a_known_array() -> None:
    pixels = np.array([[[[0, 255]]], [[[255, 0]]]], dtype=np.uint8)  # N=2, C=1, 1x2
    assert channel_stats(pixels) == ([0.5], [0.5])
