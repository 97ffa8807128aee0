"""build_model and pick_device: shapes, channel/class adaptation, no downloads."""

from __future__ import annotations

import pytest

from mlpipe.ml.config import ConfigError

torch = pytest.importorskip("torch")

from mlpipe.ml.models import build_model, pick_device  # noqa: E402


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18", "mobilenet_v3_small"])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_models_give_logits_for_32x32(name: str, in_channels: int) -> None:
    model = build_model(name, in_channels=in_channels, num_classes=10, image_size=32)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(4, in_channels, 32, 32))
    assert out.shape == (4, 10)


@pytest.mark.parametrize("size", [8, 64])
def test_simple_cnn_handles_small_and_large_images(size: int) -> None:
    model = build_model("simple_cnn", in_channels=1, num_classes=3, image_size=size)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 3)


def test_first_conv_is_adapted_to_grayscale() -> None:
    model = build_model("resnet18", in_channels=1, num_classes=5, image_size=32)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert last.out_features == 5


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'no_such_net'"):
        build_model("no_such_net", in_channels=3, num_classes=2, image_size=32)


def test_too_small_image_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model 'alexnet' cannot take 3x8x8 images"):
        build_model("alexnet", in_channels=3, num_classes=2, image_size=8)


def test_pick_device() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert pick_device("auto").type in {"cpu", "mps"}
        with pytest.raises(ConfigError, match=r"device 'cuda' is not available.*\['cpu'"):
            pick_device("cuda")
    with pytest.raises(ConfigError, match=r"unknown device 'tpu'"):
        pick_device("tpu")
