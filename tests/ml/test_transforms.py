"""Augmentation config (validated by pydantic) and the v2 transforms built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.ml.config import ConfigError, TrainConfig, load_train_config

torch = pytest.importorskip("torch")

from mlpipe.ml.shards import Normalise, write_arrays  # noqa: E402
from mlpipe.ml.training import train  # noqa: E402
from mlpipe.ml.transforms import build_transforms  # noqa: E402

MEAN, STD = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]


def pixels(seed: int = 0, channels: int = 3, size: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, size, size), generator=gen, dtype=torch.uint8)


def test_no_augment_normalises_like_the_dataset_statistics() -> None:
    x = pixels()
    for train_mode in (True, False):
        out = build_transforms(TrainConfig(), mean=MEAN, std=STD, image_size=16,
                               train=train_mode)(x)
        assert out.dtype == torch.float32
        assert torch.allclose(out, Normalise(MEAN, STD)(x), atol=1e-6)


def test_standard_augment_changes_training_inputs_only() -> None:
    cfg = TrainConfig(augment="standard")
    x = pixels()
    train_t = build_transforms(cfg, mean=MEAN, std=STD, image_size=16, train=True)
    eval_t = build_transforms(cfg, mean=MEAN, std=STD, image_size=16, train=False)
    names = [type(t).__name__ for t in train_t.transforms]
    assert names[:3] == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter"]
    torch.manual_seed(0)
    outs = [train_t(x) for _ in range(3)]
    assert all(o.shape == (3, 16, 16) for o in outs)
    assert not torch.equal(outs[0], outs[1])
    assert torch.equal(eval_t(x), eval_t(x))
    gray = build_transforms(cfg, mean=[0.5], std=[0.2], image_size=16, train=True, channels=1)
    assert "ColorJitter" not in [type(t).__name__ for t in gray.transforms]


def test_a_list_of_v2_steps_with_arguments() -> None:
    cfg = load_train_config({"augment": [{"name": "RandomRotation", "degrees": 10},
                                         {"name": "RandomHorizontalFlip", "p": 1.0}]})
    t = build_transforms(cfg, mean=MEAN, std=STD, image_size=16, train=True)
    assert type(t.transforms[0]).__name__ == "RandomRotation"
    x = pixels()
    flipped = build_transforms(load_train_config({"augment": [
        {"name": "RandomHorizontalFlip", "p": 1.0}]}), mean=MEAN, std=STD, image_size=16,
        train=True)(x)
    assert torch.allclose(flipped, Normalise(MEAN, STD)(x.flip(-1)), atol=1e-6)


@pytest.mark.parametrize(("augment", "expected"), [
    ([{"name": "RandomFlip"}], r"^train\.augment: step 0: unknown transform 'RandomFlip' "
                               r"\(not in torchvision.transforms.v2\); did you mean "
                               r"'RandomVerticalFlip', "),
    ([{"name": "RandomRotation", "degreez": 5}],
     r"^train\.augment: step 0: RandomRotation: unknown argument 'degreez'; did you mean "
     r"'degrees'\?; known: degrees, interpolation, expand, center, fill$"),
    ([{"name": "RandomRotation"}],
     r"^train\.augment: step 0: RandomRotation: missing a required argument: 'degrees'$"),
    ([{"name": "ColorJitter"}, {"name": "RandomRotation", "degrees": -5}],
     r"^train\.augment: step 1: RandomRotation argument 'degrees': "),
    ([{"degrees": 5}], r"^train\.augment: step 0 name: Field required$"),
    ("strong", r"^train\.augment: unknown augment preset 'strong'; use 'standard' or a list"),
])
def test_bad_augment_is_one_line_naming_the_step(augment: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_train_config({"augment": augment})
    assert "\n" not in str(info.value)


def test_config_with_augment_roundtrips_through_a_checkpoint_dump() -> None:
    cfg = load_train_config({"augment": [{"name": "RandomRotation", "degrees": 10}]})
    assert load_train_config(cfg.model_dump()) == cfg


def test_training_with_standard_augment_and_imagenet_normalisation(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = (torch.rand(90, 3, 12, 12, generator=gen) * 60).to(torch.uint8)
    for k in range(3):
        x[y == k, k] += 150  # class k is bright in channel k: survives crops and flips
    write_arrays(tmp_path / "data", {"train": (x[:60].numpy(), y[:60].numpy()),
                                     "val": (x[60:].numpy(), y[60:].numpy())}, ["r", "g", "b"])
    cfg = {"epochs": 4, "batch_size": 16, "lr": 0.01, "optimizer": "adam", "device": "cpu",
           "augment": "standard", "normalize": "imagenet"}
    result = train(cfg, tmp_path / "data", checkpoint_dir=tmp_path / "ckpt")
    assert result.preprocessing.mean == [0.485, 0.456, 0.406]
    assert result.best_val_acc >= 0.9


def test_model_spec_carries_the_training_preprocessing() -> None:
    from mlpipe.ml.inference import ModelSpec
    from mlpipe.ml.transforms import Preprocessing

    manifest = {"classes": ["a", "b"], "image_size": [32, 32], "channels": 3,
                "mean": MEAN, "std": STD}
    prep = Preprocessing([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 24, 28)
    spec = ModelSpec.from_dict(ModelSpec.from_manifest(manifest, prep).to_dict())
    assert (spec.mean, spec.input_size, spec.input_resize) == (prep.mean, 24, 28)
    x = torch.stack([pixels(i, size=32) for i in range(2)])
    expected = build_transforms(None, mean=prep.mean, std=prep.std, image_size=24,
                                train=False, resize=28)(x)
    assert expected.shape == (2, 3, 24, 24)
    assert torch.equal(spec.transform()(x), expected)
    # a spec stored before these fields existed keeps serving as before
    old = {k: v for k, v in spec.to_dict().items() if k not in ("input_size", "input_resize")}
    plain = ModelSpec.from_dict({**old, "mean": MEAN, "std": STD}).transform()(x)
    assert torch.allclose(plain, Normalise(MEAN, STD)(x), atol=1e-6)
