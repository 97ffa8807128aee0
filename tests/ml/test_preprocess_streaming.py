"""Streaming preprocessing: resize modes, formats, split layouts, stable stratified splits,
the pixel cap and a peak-RSS bound that does not grow with the number of images."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from mlpipe.ml.preprocess import (
    CorruptImageError,
    DatasetError,
    PreprocessOptions,
    load_split_pixels,
    preprocess_images,
)
from mlpipe.ml.shards import ShardDataset
from mlpipe.ml.splits import find_images

RED, GREEN, BLUE = (230, 10, 10), (10, 230, 10), (10, 10, 230)
IN_PROCESS = {"num_workers": 0, "val_fraction": 0.0, "test_fraction": 0.0}


def _wide(path: Path) -> None:
    """60x20: red, green and blue thirds from left to right."""
    img = Image.new("RGB", (60, 20), GREEN)
    img.paste(RED, (0, 0, 20, 20))
    img.paste(BLUE, (40, 0, 60, 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


@pytest.mark.parametrize("resize", ["shorter_side", "stretch"])
def test_shorter_side_keeps_the_center_of_a_wide_image(tmp_path: Path, resize: str) -> None:
    _wide(tmp_path / "src" / "a" / "wide.png")
    preprocess_images(tmp_path / "src", tmp_path / "out",
                      PreprocessOptions(image_size=(8, 8), resize=resize, **IN_PROCESS))
    x = load_split_pixels(tmp_path / "out", "train")[0][0].numpy()  # C, H, W
    left, right = x[:, 4, 0].tolist(), x[:, 4, 7].tolist()
    if resize == "shorter_side":  # only the green middle survives the crop
        assert left[1] > 200 and right[1] > 200 and left[0] < 40 and right[2] < 40
    else:  # the whole image squashed: red on the left, blue on the right
        assert left[0] > 200 and right[2] > 200


def test_every_default_format_is_included_case_insensitively(tmp_path: Path) -> None:
    root = tmp_path / "src" / "cls"
    root.mkdir(parents=True)
    img = Image.new("RGB", (10, 10), RED)
    kinds = {"a.jpg": "JPEG", "b.JPEG": "JPEG", "c.png": "PNG", "d.Png": "PNG", "e.bmp": "BMP"}
    if features.check("webp"):
        kinds["f.webp"] = "WEBP"
    for name, fmt in kinds.items():
        img.save(root / name, format=fmt)
    img.save(root / "skipped.gif", format="GIF")
    (root / "notes.txt").write_text("not an image")
    manifest = preprocess_images(tmp_path / "src", tmp_path / "out",
                                 PreprocessOptions(image_size=(4, 4), **IN_PROCESS))
    assert sorted(f["path"] for f in manifest["splits"]["train"]["files"]) == \
        sorted(f"cls/{name}" for name in kinds)
    assert manifest["corrupt_count"] == 0 and manifest["total_files"] == len(kinds)


def _tiny_pngs(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (4, 4), 100).save(root / name)


def test_user_split_folders_are_used_as_given(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tiny_pngs(src, ["train/cat/1.png", "train/cat/2.png", "train/dog/1.png",
                     "val/cat/3.png", "val/dog/2.png", "test/dog/3.png", "test/emu/1.png"])
    manifest = preprocess_images(src, tmp_path / "out", PreprocessOptions(
        image_size=(4, 4), grayscale=True, num_workers=0))
    assert manifest["split_layout"] == "folders"
    assert manifest["classes"] == ["cat", "dog", "emu"]
    assert manifest["counts"] == {"train": 3, "val": 2, "test": 2}
    test = ShardDataset(tmp_path / "out", "test")
    assert sorted(zip((f["path"] for f in test.manifest["splits"]["test"]["files"]),
                      test.targets, strict=True)) == [("test/dog/3.png", 1),
                                                      ("test/emu/1.png", 2)]
    # forcing the hash layout treats train/ val/ test/ as class names
    _, files, layout = find_images(src, split="hash")
    assert layout == "hash" and {f.label for f in files} == {"train", "val", "test"}
    with pytest.raises(DatasetError, match=r"split='folders' but .* has no train/ folder"):
        find_images(src / "train", split="folders")
    with pytest.raises(DatasetError, match=r"split 'random' is not one of"):
        find_images(src, split="random")


def _names(per_class: int, start: int = 0) -> list[str]:
    return [f"c{c}/img{i:04d}.png" for c in range(5) for i in range(start, start + per_class)]


def test_splits_are_stratified_and_stable_when_images_are_added(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in _names(150):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).touch()  # find_images decides splits from names alone
    _, before, _ = find_images(src, seed=3)
    per_class = Counter((f.label, f.split) for f in before)
    for c in range(5):
        assert 0.6 <= per_class[(f"c{c}", "train")] / 150 <= 0.8
        assert 0.12 <= per_class[(f"c{c}", "val")] / 150 <= 0.28
        assert 0.04 <= per_class[(f"c{c}", "test")] / 150 <= 0.16
    for name in _names(30, start=150):  # 20% more images
        (src / name).touch()
    _, after, _ = find_images(src, seed=3)
    old = {f.path: f.split for f in before}
    assert len(after) == 900
    assert {f.path: f.split for f in after if f.path in old} == old
    assert {f.split for f in after if f.path not in old} == {"train", "val", "test"}


def test_images_above_the_pixel_cap_are_skipped_or_fail(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tiny_pngs(src, ["a/small.png"])
    Image.new("L", (2000, 1000), 0).save(src / "a" / "bomb.png")  # 2 MP, tiny file
    options = PreprocessOptions(image_size=(4, 4), max_pixels=1_000_000, **IN_PROCESS)
    manifest = preprocess_images(src, tmp_path / "out", options)
    assert manifest["counts"]["train"] == 1
    assert manifest["corrupt"][0]["path"] == "a/bomb.png"
    assert "2000x1000 pixels is above the limit of 1,000,000" in manifest["corrupt"][0]["error"]
    strict = PreprocessOptions(image_size=(4, 4), max_pixels=1_000_000, on_corrupt="fail",
                               **IN_PROCESS)
    with pytest.raises(CorruptImageError, match=r"'a/bomb\.png'.*above the limit"):
        preprocess_images(src, tmp_path / "strict", strict)


def test_shards_are_bounded_by_megabytes_and_mix_the_classes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tiny_pngs(src, _names(40))
    manifest = preprocess_images(src, tmp_path / "out", PreprocessOptions(
        image_size=(32, 32), grayscale=True, shard_mb=10 * 1024 / 2**20, **IN_PROCESS))
    train = manifest["splits"]["train"]
    assert train["shard_counts"] == [10] * 20  # 10 images of 1 KiB per 10 KiB shard
    first = Counter(f["path"].split("/")[0] for f in train["files"][:10])
    assert len(first) >= 3  # a shard is not one class


_RSS_CHILD = """
import json, multiprocessing, resource, sys
from pathlib import Path
from mlpipe.ml import preprocess
# Spawned workers are this process's own children, so RUSAGE_CHILDREN covers them once the
# pool is joined (forkserver's workers are the server's children, invisible from here).
preprocess._pool_context = lambda: multiprocessing.get_context("spawn")
manifest = preprocess.preprocess_images(Path(sys.argv[1]), Path(sys.argv[2]),
    preprocess.PreprocessOptions(image_size=(224, 224), num_workers=2, min_files_per_worker=1,
                                 shard_mb=8, val_fraction=0.1, test_fraction=0.1))
# VmHWM, not RUSAGE_SELF: the latter keeps the high-water mark of the (big) pytest process
# this one was forked from.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"images": sum(manifest["counts"].values()),
                  "parent": int(hwm.split()[1]) / 1024,
                  "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


@pytest.mark.slow
def test_peak_memory_is_bounded_by_shards_and_workers_not_images(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    for c in range(4):
        (src / f"c{c}").mkdir(parents=True)
        for i in range(1000):
            noise = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(noise).resize((256, 240)).save(src / f"c{c}" / f"{i}.jpg",
                                                            quality=80)
    done = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(src), str(tmp_path / "out")],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["images"] == 4000
    stats = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert max(c for s in stats["splits"].values() for c in s["shard_counts"]) == 55
    dataset_mb = 4000 * 3 * 224 * 224 / 2**20  # 574 MB of uint8 pixels
    # interpreter + numpy + Pillow (~60 MB) + one 8 MB shard + 2 batches of 4 MB per worker
    peak_mb = max(figures["parent"], figures["workers"])
    assert peak_mb < 150 < dataset_mb / 3, figures
