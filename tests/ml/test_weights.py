"""Pretrained weights: a weights file planted in a temporary TORCH_HOME is loaded (never
downloaded), the head is replaced, the backbone can be frozen; a missing file is one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlpipe.errors import MlpipeError

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from mlpipe.ml.models import build_model  # noqa: E402
from mlpipe.ml.shards import write_arrays  # noqa: E402
from mlpipe.ml.training import train  # noqa: E402
from mlpipe.ml.transforms import IMAGENET_MEAN  # noqa: E402
from mlpipe.ml.weights import WeightsError, load_weights  # noqa: E402

FILE = "resnet18-f37072fd.pth"  # the file name of ResNet18_Weights.IMAGENET1K_V1's URL


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def planted(torch_home: Path) -> dict[str, Any]:
    """A resnet18 state dict (random, seeded) saved where torch.hub caches the real one."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / FILE)
    return state


def backbone_equal(model: torch.nn.Module, state: dict[str, Any]) -> bool:
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("fc."))


@pytest.mark.parametrize("name", ["DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"])
def test_named_weights_load_from_torch_home(planted: dict[str, Any], name: str) -> None:
    pretrained = load_weights("resnet18", name)
    assert str(pretrained.enum) == "ResNet18_Weights.IMAGENET1K_V1"
    model = build_model("resnet18", in_channels=3, num_classes=4, image_size=32,
                        pretrained=pretrained)
    assert backbone_equal(model, planted)
    assert model.fc.out_features == 4


def test_grayscale_input_sums_the_rgb_filters(planted: dict[str, Any]) -> None:
    model = build_model("resnet18", in_channels=1, num_classes=2, image_size=32,
                        pretrained=load_weights("resnet18", "DEFAULT"))
    assert torch.equal(model.conv1.weight, planted["conv1.weight"].sum(dim=1, keepdim=True))


def test_missing_file_is_one_line_naming_file_and_folder(torch_home: Path) -> None:
    folder = torch_home / "hub" / "checkpoints"
    with pytest.raises(WeightsError, match=(
        rf"^pretrained weights ResNet18_Weights.IMAGENET1K_V1 not found: {FILE} is not in "
        rf"{folder}; set allow_download: true to fetch it once, or place the file there "
        r"\(from https://download.pytorch.org/models/resnet18-f37072fd.pth\)$"
    )) as info:
        load_weights("resnet18", "DEFAULT")
    assert isinstance(info.value, MlpipeError)
    assert not folder.exists()  # nothing was downloaded


@pytest.mark.parametrize(("model", "spec", "expected"), [
    ("resnet18", "IMAGENET9K", r"^unknown weights 'IMAGENET9K' for 'resnet18'; valid: "
                               r"\['DEFAULT', 'ResNet18_Weights.IMAGENET1K_V1'\]$"),
    ("resnet18", "ResNet50_Weights.IMAGENET1K_V2", r"are not weights of 'resnet18'"),
    ("simple_cnn", "DEFAULT", r"model 'simple_cnn' has no torchvision pretrained weights"),
    ("resnet18", "/nowhere/w.pt", r"^weights file '/nowhere/w.pt' does not exist$"),
])
def test_bad_weights_names(torch_home: Path, model: str, spec: str, expected: str) -> None:
    with pytest.raises(WeightsError, match=expected):
        load_weights(model, spec)


def test_weights_from_a_file_uri(tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = build_model("simple_cnn", in_channels=1, num_classes=3, image_size=8)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    model = build_model("simple_cnn", in_channels=1, num_classes=5, image_size=8,
                        pretrained=load_weights("simple_cnn", path.as_uri()))
    assert torch.equal(model[0].weight, source[0].weight)
    assert model[-1].out_features == 5  # the 3-class head was not loaded


def test_a_file_of_another_architecture_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(build_model("simple_cnn", in_channels=1, num_classes=3,
                           image_size=8).state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not match the model: missing \['conv1.weight'"):
        build_model("resnet18", in_channels=1, num_classes=3, image_size=32,
                    pretrained=load_weights("resnet18", str(path)))


@pytest.mark.slow
def test_frozen_backbone_trains_only_the_head(planted: dict[str, Any], tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 3, 32, 32), generator=gen, dtype=torch.uint8)
    y = torch.arange(24) % 3
    write_arrays(tmp_path / "data", {"train": (x[:16].numpy(), y[:16].numpy()),
                                     "val": (x[16:].numpy(), y[16:].numpy())}, ["a", "b", "c"])
    cfg = {"model": "resnet18", "weights": "DEFAULT", "freeze_backbone": True, "epochs": 1,
           "batch_size": 8, "device": "cpu", "lr": 0.1}
    result = train(cfg, tmp_path / "data", checkpoint_dir=tmp_path / "ckpt")
    model = result.model
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert backbone_equal(model, {k: v for k, v in planted.items() if "running" not in k
                                  and "num_batches" not in k})
    assert model.fc.out_features == 3
    # ImageNet normalisation and the weights' own sizes (resize 256, crop 224) by default
    prep = result.preprocessing
    assert (prep.mean, prep.image_size, prep.resize) == (list(IMAGENET_MEAN), 224, 256)


def test_weights_from_an_mlflow_run_artifact(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment(
        "w", artifact_location=(tmp_path / "artifacts").as_uri()))
    torch.manual_seed(9)
    source = build_model("simple_cnn", in_channels=1, num_classes=3, image_size=8)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    client.log_artifact(run.info.run_id, str(tmp_path / "w.pt"), "weights")
    spec = f"runs:/{run.info.run_id}/weights/w.pt"
    model = build_model("simple_cnn", in_channels=1, num_classes=3, image_size=8,
                        pretrained=load_weights("simple_cnn", spec))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in source.state_dict().items())
    with pytest.raises(WeightsError, match=r"^weights 'runs:/.*/weights/nope.pt' cannot be "
                                           r"fetched: "):
        load_weights("simple_cnn", f"runs:/{run.info.run_id}/weights/nope.pt")
