"""EfficientNet-Lite0 transfer model: verified weights, new head, freezing, frozen BatchNorm, device choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slipway.errors import ConfigError, IntegrityError
from slipway.storage import sha256_file
from slipway.vision.model import (
    IMAGENET_WEIGHTS_SHA256,
    build_classifier,
    count_parameters,
    imagenet_weights_path,
    load_imagenet_state_dict,
    resolve_device,
    set_train_mode,
)

pytestmark = pytest.mark.unit


def test_pinned_digest_matches_the_installed_weights() -> None:
    assert sha256_file(imagenet_weights_path()) == IMAGENET_WEIGHTS_SHA256
    state = load_imagenet_state_dict()
    assert state["_fc.weight"].shape == (1000, 1280)  # the ImageNet head we drop


def test_wrong_digest_or_tampered_file_raises_before_loading(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="expected 0000"):
        load_imagenet_state_dict(expected_sha256="0" * 64)
    tampered = tmp_path / "weights.pth"
    tampered.write_bytes(imagenet_weights_path().read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match="corrupt"):
        load_imagenet_state_dict(tampered)


def _trainable_names(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_finetune_freezes_all_but_the_last_blocks_and_uses_imagenet_features() -> None:
    model = build_classifier(4, image_size=64, strategy="finetune", trainable_blocks=2)
    names = _trainable_names(model)
    assert model._fc.out_features == 4
    assert {n.split(".")[1] for n in names if n.startswith("_blocks.")} == {"14", "15"}
    assert {"_fc.weight", "_fc.bias", "_conv_head.weight", "_bn1.weight"} <= names
    assert not any(n.startswith(("_conv_stem", "_bn0", "_blocks.0.")) for n in names)
    state = load_imagenet_state_dict()
    assert torch.equal(model._conv_stem.weight, state["_conv_stem.weight"])
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 4)


def test_linear_probe_and_scratch() -> None:
    probe = build_classifier(3, image_size=64, strategy="linear_probe")
    assert _trainable_names(probe) == {"_fc.weight", "_fc.bias"}
    assert count_parameters(probe)[0] == 1280 * 3 + 3
    scratch = build_classifier(3, image_size=64, strategy="scratch")
    trainable, total = count_parameters(scratch)
    assert trainable == total
    assert not torch.equal(scratch._conv_stem.weight, probe._conv_stem.weight)
    with pytest.raises(ConfigError):
        build_classifier(3, image_size=64, trainable_blocks=17)
    with pytest.raises(ConfigError):
        build_classifier(1, image_size=64)


def test_frozen_batchnorm_keeps_imagenet_statistics_in_train_mode() -> None:
    model = build_classifier(2, image_size=64, strategy="finetune", trainable_blocks=1)
    set_train_mode(model)
    frozen_bn = model._blocks[0]._bn1
    trained_bn = model._blocks[15]._bn1
    before_frozen = frozen_bn.running_mean.clone()
    before_trained = trained_bn.running_mean.clone()
    model(torch.rand(4, 3, 64, 64))
    assert not frozen_bn.training and trained_bn.training and model._dropout.training
    assert torch.equal(frozen_bn.running_mean, before_frozen)
    assert not torch.equal(trained_bn.running_mean, before_trained)


def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="cuda"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
