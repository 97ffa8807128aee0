"""ShardDataset and ShardShuffleSampler: items, labels, shard-wise shuffling, DDP partition."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

from mlpipe.ml.preprocess import DatasetError  # noqa: E402
from mlpipe.ml.shards import (  # noqa: E402
    Normalise,
    ShardDataset,
    ShardShuffleSampler,
    predict_split,
    split_stats,
    write_arrays,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """103 train images (each filled with its index mod 256) in shards of 10, 7 val."""
    root = tmp_path_factory.mktemp("shards")
    x = np.stack([np.full((3, 4, 5), i % 256, np.uint8) for i in range(103)])
    y = np.arange(103) % 4
    write_arrays(root, {"train": (x, y), "val": (x[:7], y[:7])}, list("abcd"), shard_size=10)
    return root


def test_items_labels_and_metadata_come_from_the_shards(dataset: Path) -> None:
    ds = ShardDataset(dataset, "train")
    assert len(ds) == 103
    assert ds.classes == ["a", "b", "c", "d"]
    assert ds.targets[:6] == [0, 1, 2, 3, 0, 1]
    for index in (0, 9, 10, 55, 102):
        pixels, label = ds[index]
        assert pixels.dtype == torch.uint8 and tuple(pixels.shape) == (3, 4, 5)
        assert int(pixels[0, 0, 0]) == index and label == index % 4
    with pytest.raises(IndexError, match="out of range"):
        ds[103]
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        ShardDataset(dataset, "holdout")


def test_default_transform_normalises_with_the_train_statistics(dataset: Path) -> None:
    ds = ShardDataset(dataset, "train")
    mean, std = split_stats(ds.manifest)
    expected_mean = np.mean(np.arange(103) % 256) / 255.0
    assert mean == pytest.approx([expected_mean] * 3)
    ds.transform = Normalise(mean, std)
    x, _ = ds[40]
    assert x.dtype == torch.float32
    assert float(x[0, 0, 0]) == pytest.approx((40 / 255.0 - mean[0]) / std[0], rel=1e-5)


def test_the_sampler_shuffles_shards_then_within_and_is_deterministic(dataset: Path) -> None:
    ds = ShardDataset(dataset, "train")
    sampler = ShardShuffleSampler(ds, seed=3, epoch=1)
    order = list(sampler)
    assert sorted(order) == list(range(103))
    assert order == list(ShardShuffleSampler(ds, seed=3, epoch=1))
    # each shard's samples are read together: the shard index changes once per shard
    shards = [i // 10 for i in order]
    visits = [s for i, s in enumerate(shards) if i == 0 or shards[i - 1] != s]
    assert sorted(visits) == list(range(11))  # each shard visited once
    assert visits != list(range(11))  # in a shuffled order
    first = order[:len([s for s in shards if s == visits[0]])]
    assert first != sorted(first)  # and shuffled within the shard
    sampler.set_epoch(2)
    assert list(sampler) != order
    assert list(ShardShuffleSampler(ds, seed=4, epoch=1)) != order


def test_ranks_get_disjoint_equal_parts_covering_everything(dataset: Path) -> None:
    ds = ShardDataset(dataset, "train")
    parts = [list(ShardShuffleSampler(ds, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 52  # 103 padded to 104
    assert set(parts[0]) | set(parts[1]) == set(range(103))
    assert len(set(parts[0]) & set(parts[1])) == 1  # the one wrapped-around sample
    with pytest.raises(DatasetError, match="rank 2 is not in a world of size 2"):
        ShardShuffleSampler(ds, seed=0, rank=2, world_size=2)


def test_a_data_loader_with_workers_reads_every_sample(dataset: Path) -> None:
    from torch.utils.data import DataLoader

    ds = ShardDataset(dataset, "train")
    loader = DataLoader(ds, batch_size=16, sampler=ShardShuffleSampler(ds, seed=1),
                        num_workers=2)
    seen = torch.cat([x[:, 0, 0, 0] for x, _ in loader]).tolist()
    assert sorted(seen) == [i % 256 for i in range(103)]


def test_predict_split_streams_the_split_in_order(dataset: Path) -> None:
    class First(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.arange(len(x)) % 4, 4).float()

    truth, predicted, manifest = predict_split(First(), dataset, "val", batch_size=3)
    assert truth.tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert predicted.tolist() == [0, 1, 2, 0, 1, 2, 0]  # restarts with each batch of 3
    assert manifest["classes"] == ["a", "b", "c", "d"]
