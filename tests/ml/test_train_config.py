"""TrainConfig: defaults, validation errors with field paths, YAML loading with file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe.errors import MlpipeError
from mlpipe.ml.config import ConfigError, TrainConfig, load_train_config

pytest.importorskip("torchvision")


def test_defaults_are_valid() -> None:
    cfg = TrainConfig()
    assert cfg.model == "simple_cnn"
    assert cfg.device == "auto"
    assert cfg.early_stopping_patience is None


def test_dict_and_instance_are_accepted() -> None:
    cfg = load_train_config({"model": "resnet18", "epochs": 3, "optimizer": "sgd"})
    assert (cfg.model, cfg.epochs, cfg.optimizer) == ("resnet18", 3, "sgd")
    assert load_train_config(cfg) is cfg


def test_config_error_is_an_mlpipe_error() -> None:
    assert issubclass(ConfigError, MlpipeError)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"lr": 0}, r"^train\.lr: Input should be greater than 0$"),
        ({"epochs": 0}, r"^train\.epochs: Input should be greater than or equal to 1$"),
        ({"epochs": 1001}, r"^train\.epochs: Input should be less than or equal to 1000$"),
        ({"batch_size": 0}, r"^train\.batch_size: "),
        ({"lerning_rate": 0.1}, r"^train\.lerning_rate: Extra inputs are not permitted$"),
        ({"optimizer": "rmsprop"}, r"^train\.optimizer: Input should be 'sgd', 'adam' or 'adamw'"),
        ({"lr_schedule": "linear"}, r"^train\.lr_schedule: "),
        ({"device": "tpu"}, r"^train\.device: "),
        ({"early_stopping_patience": 0}, r"^train\.early_stopping_patience: "),
        ({"weight_decay": -1}, r"^train\.weight_decay: "),
        ({"num_workers": -1}, r"^train\.num_workers: "),
        ({"checkpoint_every": 0}, r"^train\.checkpoint_every: "),
    ],
)
def test_invalid_values_name_the_field(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_train_config(data)
    assert "\n" not in str(info.value)


def test_unknown_model_suggests_a_close_name() -> None:
    with pytest.raises(ConfigError, match=r"^train\.model: unknown model 'resnet181'.*"
                       r"did you mean 'resnet18'\?$"):
        load_train_config({"model": "resnet181"})


def test_several_problems_are_reported_on_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_train_config({"lr": 0, "epochs": 0})
    assert [path for path, _ in info.value.problems] == ["train.epochs", "train.lr"]
    assert "\n" not in str(info.value)


def test_yaml_top_level_and_train_section(tmp_path: Path) -> None:
    flat = tmp_path / "flat.yaml"
    flat.write_text("model: mobilenet_v3_small\nepochs: 2\nlr: 0.01\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  model: mobilenet_v3_small\n  epochs: 2\n  lr: 0.01\n")
    assert TrainConfig.from_yaml(flat) == load_train_config(str(nested))
    assert load_train_config(flat).lr == 0.01


def test_yaml_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: 0\n  colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "train.lr: Input should be greater than 0" in message
    assert "train.colour: Extra inputs are not permitted" in message
    assert info.value.source == str(path)


def test_yaml_syntax_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [lr: 1\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML"):
        TrainConfig.from_yaml(broken)
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read config file"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: train: expected a mapping.*got list"):
        load_train_config(path)
