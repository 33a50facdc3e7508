"""Binary classification metrics, ROC curve and confusion matrix, plus PNG plots (matplotlib Agg)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

logger = logging.getLogger(__name__)

MAX_ROC_POINTS = 200


@dataclass
class ClassificationReport:
    """Metrics of a binary classifier on one labelled set; label 1 is "Yes" (churn)."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    confusion_matrix: list[list[int]]
    labels: list[str] = field(default_factory=lambda: ["No", "Yes"])
    roc_fpr: list[float] = field(default_factory=list)
    roc_tpr: list[float] = field(default_factory=list)
    roc_thresholds: list[float] = field(default_factory=list)
    threshold: float = 0.5

    def metrics(self) -> dict[str, float]:
        """The scalar metrics as a flat dict."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "roc_auc": self.roc_auc,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def _downsample(n: int, limit: int = MAX_ROC_POINTS) -> np.ndarray:
    """Indices of at most `limit` evenly spread points, always keeping the first and last."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def evaluate_classifier(y_true: Any, y_score: Any, threshold: float = 0.5) -> ClassificationReport:
    """Evaluate 0/1 labels against positive-class scores; predictions are `score >= threshold`."""
    y = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(y_score, dtype=float).ravel()
    if y.shape != scores.shape:
        raise ValueError(f"y_true has {y.shape[0]} rows but y_score has {scores.shape[0]}")
    if y.size == 0:
        raise ValueError("cannot evaluate on an empty set")
    pred = (scores >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    roc_auc = float(roc_auc_score(y, scores)) if both_classes else float("nan")
    fpr: list[float] = []
    tpr: list[float] = []
    thresholds: list[float] = []
    if both_classes:
        f, t, th = roc_curve(y, scores)
        finite = np.isfinite(th)
        cap = max(1.0, float(th[finite].max())) if finite.any() else 1.0
        th = np.where(finite, th, cap)  # sklearn's first threshold is +inf
        idx = _downsample(len(f))
        fpr, tpr, thresholds = f[idx].tolist(), t[idx].tolist(), th[idx].tolist()
    cm = confusion_matrix(y, pred, labels=[0, 1])
    return ClassificationReport(
        accuracy=float(accuracy_score(y, pred)),
        precision=float(precision_score(y, pred, zero_division=0)),
        recall=float(recall_score(y, pred, zero_division=0)),
        f1=float(f1_score(y, pred, zero_division=0)),
        roc_auc=roc_auc,
        confusion_matrix=[[int(v) for v in row] for row in cm],
        roc_fpr=[float(v) for v in fpr],
        roc_tpr=[float(v) for v in tpr],
        roc_thresholds=[float(v) for v in thresholds],
        threshold=threshold,
    )


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_roc_png(report: ClassificationReport, path: str | Path) -> Path:
    """Plot the ROC curve to a PNG file."""
    plt = _pyplot()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        ax.plot(report.roc_fpr, report.roc_tpr, label=f"ROC (AUC = {report.roc_auc:.3f})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
        ax.set_xlabel("False positive rate")
        ax.set_ylabel("True positive rate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_title("ROC curve")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(dest, format="png", dpi=100)
    finally:
        plt.close(fig)
    return dest


def save_confusion_png(report: ClassificationReport, path: str | Path) -> Path:
    """Plot the confusion matrix (rows = true, columns = predicted) to a PNG file."""
    plt = _pyplot()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cm = np.asarray(report.confusion_matrix)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    try:
        im = ax.imshow(cm, cmap="Blues")
        fig.colorbar(im, ax=ax)
        ax.set_xticks(range(len(report.labels)), report.labels)
        ax.set_yticks(range(len(report.labels)), report.labels)
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True")
        ax.set_title(f"Confusion matrix (threshold {report.threshold:g})")
        high = cm.max() / 2 if cm.size else 0
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > high else "black")
        fig.tight_layout()
        fig.savefig(dest, format="png", dpi=100)
    finally:
        plt.close(fig)
    return dest
