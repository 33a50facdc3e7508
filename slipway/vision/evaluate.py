"""Evaluation of an image classifier: accuracy, macro P/R/F1, confusion matrix (numbers and a picture), and the
comparison of fine-tuning against training from scratch and a frozen-backbone linear probe on the same budget."""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slipway.vision.data import ImageDataset
from slipway.vision.model import resolve_device
from slipway.vision.train import TrainConfig, TrainResult, iterate_batches, train_classifier

logger = logging.getLogger(__name__)


@dataclass
class VisionEvaluation:
    classes: list[str]
    n_images: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    log_loss: float
    confusion_matrix: list[list[int]]

    def metrics(self) -> dict[str, float]:
        """Scalar metrics (for KFP Metrics and the registry)."""
        return {
            "accuracy": self.accuracy,
            "precision_macro": self.precision_macro,
            "recall_macro": self.recall_macro,
            "f1_macro": self.f1_macro,
            "log_loss": self.log_loss,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def predict_proba(model: nn.Module, images: torch.Tensor, *, batch_size: int = 64, device: str = "auto") -> np.ndarray:
    """Class probabilities [N, C] for uint8 images [N, 3, S, S] (eval transform, eval mode)."""
    dev = resolve_device(device)
    model.eval()
    labels = torch.zeros(images.shape[0], dtype=torch.long)
    batches = iterate_batches(images, labels, batch_size=batch_size, device=dev)
    chunks = [torch.softmax(model(x), dim=1).cpu() for x, _ in batches]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0))


def evaluate_classifier(
    model: nn.Module, data: ImageDataset, *, batch_size: int = 64, device: str = "auto"
) -> VisionEvaluation:
    """Score `model` on `data` with the deterministic eval transform."""
    from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

    proba = predict_proba(model, data.images, batch_size=batch_size, device=device)
    y_true = data.labels.numpy()
    y_pred = proba.argmax(1)
    labels = list(range(len(data.classes)))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return VisionEvaluation(
        classes=list(data.classes),
        n_images=len(y_true),
        accuracy=float((y_pred == y_true).mean()),
        precision_macro=float(precision),
        recall_macro=float(recall),
        f1_macro=float(f1),
        log_loss=float(log_loss(y_true, np.clip(proba, 1e-7, 1.0), labels=labels)),
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    )


def save_confusion_png(evaluation: VisionEvaluation, path: str | Path, title: str = "Confusion matrix") -> Path:
    """Plot the confusion matrix (rows = true class, columns = predicted) to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cm = np.asarray(evaluation.confusion_matrix)
    size = 2.5 + 0.6 * len(evaluation.classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    try:
        im = ax.imshow(cm, cmap="Blues")
        fig.colorbar(im, ax=ax)
        ax.set_xticks(range(len(evaluation.classes)), evaluation.classes, rotation=45, ha="right")
        ax.set_yticks(range(len(evaluation.classes)), evaluation.classes)
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True")
        ax.set_title(f"{title} (accuracy {evaluation.accuracy:.3f})")
        high = cm.max() / 2 if cm.size else 0
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > high else "black")
        fig.tight_layout()
        fig.savefig(dest, format="png", dpi=100)
    finally:
        plt.close(fig)
    return dest


def write_evaluation_html(
    evaluation: VisionEvaluation,
    path: str | Path,
    *,
    title: str = "image classifier",
    comparison: dict[str, dict[str, float]] | None = None,
) -> Path:
    """One self-contained HTML page (picture inlined): metrics, confusion matrix and the strategy comparison."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        png = save_confusion_png(evaluation, Path(work) / "cm.png").read_bytes()
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in evaluation.metrics().items())
    table = ""
    if comparison:
        keys = sorted({k for m in comparison.values() for k in m})
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join(
            f"<tr><td>{html.escape(name)}</td>"
            + "".join(f"<td>{m.get(k, float('nan')):.4f}</td>" for k in keys)
            + "</tr>"
            for name, m in comparison.items()
        )
        table = f"<h2>Same budget, three strategies</h2><table><tr><th>strategy</th>{head}</tr>{body}</table>"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 12px}img{max-width:520px}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{evaluation.n_images} validation images, classes: "
        f"{html.escape(', '.join(evaluation.classes))}</p><table>{rows}</table>{table}"
        f"<h2>Confusion matrix</h2><img alt='confusion matrix' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode()}'></body></html>"
    )
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out


@dataclass
class StrategyComparison:
    """Each strategy trained with the same data, epochs, batch size, optimiser and seed."""

    results: dict[str, TrainResult]
    evaluations: dict[str, VisionEvaluation]

    def table(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                **self.evaluations[name].metrics(),
                "train_seconds": self.results[name].seconds,
                "trainable_parameters": float(self.results[name].trainable_parameters),
                "best_epoch": float(self.results[name].best_epoch),
            }
            for name in self.results
        }


def compare_strategies(
    train: ImageDataset,
    val: ImageDataset,
    config: TrainConfig,
    *,
    strategies: tuple[str, ...] = ("finetune", "scratch", "linear_probe"),
    progress: bool | None = None,
) -> StrategyComparison:
    """Train one model per strategy with `config` (only the strategy changes) and evaluate each on `val`."""
    results: dict[str, TrainResult] = {}
    evaluations: dict[str, VisionEvaluation] = {}
    for strategy in strategies:
        run_config = config.model_copy(update={"strategy": strategy})
        results[strategy] = train_classifier(train, val, run_config, progress=progress)
        evaluations[strategy] = evaluate_classifier(results[strategy].model, val, device=config.device)
        logger.info("%s: val accuracy %.3f", strategy, evaluations[strategy].accuracy)
    return StrategyComparison(results, evaluations)
