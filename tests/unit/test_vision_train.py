"""Training: seeded determinism, early stopping with best-weight restore, fine-tuning beats from scratch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slipway.vision import train as train_module
from slipway.vision.data import ImageDataset, load_image_folder, make_synthetic_image_folder, stratified_split
from slipway.vision.evaluate import compare_strategies, evaluate_classifier
from slipway.vision.train import TrainConfig, load_checkpoint, save_checkpoint, train_classifier

pytestmark = pytest.mark.unit


def _split(root: Path, size: int, val_fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    data = load_image_folder(root, image_size=size)
    train_idx, val_idx = stratified_split(data.labels, val_fraction, seed)
    return data.subset(train_idx), data.subset(val_idx)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageDataset, ImageDataset]:
    torch.set_num_threads(2)
    root = make_synthetic_image_folder(
        tmp_path_factory.mktemp("tiny"), n_per_class=6, image_size=64, seed=3, classes=("circle", "square")
    )
    return _split(root, 64, 0.34)


def test_two_runs_with_the_same_seed_are_identical(tiny: tuple[ImageDataset, ImageDataset], tmp_path: Path) -> None:
    train, val = tiny
    config = TrainConfig(epochs=1, batch_size=4, trainable_blocks=1, seed=5)
    a = train_classifier(train, val, config, progress=False)
    b = train_classifier(train, val, config, progress=False)
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a.history[0].train_loss == b.history[0].train_loss
    assert a.history[0].val_loss == b.history[0].val_loss
    # the head really trained (it is not the seeded initial head)
    c = train_classifier(train, val, config.model_copy(update={"seed": 6}), progress=False)
    assert not torch.equal(state_a["_fc.weight"], c.model.state_dict()["_fc.weight"])
    # a checkpoint rebuilds the same network
    save_checkpoint(a, tmp_path / "ckpt.pt")
    rebuilt, raw = load_checkpoint(tmp_path / "ckpt.pt")
    assert raw["classes"] == ["circle", "square"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), a.model.eval()(x), atol=1e-6)


def test_early_stopping_restores_the_best_epoch(
    tiny: tuple[ImageDataset, ImageDataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val = tiny
    losses = iter([0.9, 0.5, 0.7, 0.8, 0.6, 0.4])
    snapshots: list[torch.Tensor] = []
    real = train_module.evaluate_loss

    def fake_evaluate_loss(model, images, labels, *, batch_size, device):  # type: ignore[no-untyped-def]
        real(model, images, labels, batch_size=batch_size, device=device)
        snapshots.append(model.state_dict()["_fc.weight"].clone())
        return next(losses), 0.5

    monkeypatch.setattr(train_module, "evaluate_loss", fake_evaluate_loss)
    config = TrainConfig(strategy="linear_probe", epochs=6, batch_size=8, patience=2, seed=1, augment=False)
    result = train_classifier(train, val, config, progress=False)
    assert [h.val_loss for h in result.history] == [0.9, 0.5, 0.7, 0.8]
    assert result.stopped_early and result.best_epoch == 2
    assert torch.equal(result.model.state_dict()["_fc.weight"], snapshots[1])


@pytest.mark.slow
def test_finetuning_beats_training_from_scratch_on_the_same_budget(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    root = make_synthetic_image_folder(tmp_path / "shapes", n_per_class=16, image_size=64, seed=11)
    train, val = _split(root, 64, 0.3)
    config = TrainConfig(epochs=2, batch_size=16, seed=0)
    result = compare_strategies(train, val, config, strategies=("finetune", "scratch"), progress=False)
    finetune, scratch = result.evaluations["finetune"], result.evaluations["scratch"]
    # 3 balanced classes: chance is 1/3; two epochs are not enough for the randomly initialised network
    assert finetune.accuracy >= 0.6, result.table()
    assert finetune.accuracy >= scratch.accuracy + 0.3, result.table()
    assert sum(map(sum, finetune.confusion_matrix)) == len(val.labels)
    assert 0.0 <= finetune.f1_macro <= 1.0 and finetune.log_loss < scratch.log_loss
    again = evaluate_classifier(result.results["finetune"].model, val)
    assert again.accuracy == finetune.accuracy
