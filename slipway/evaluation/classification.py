"""Binary classification metrics, ROC curve and confusion matrix, plus PNG plots (matplotlib Agg)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
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
    pr_auc: float = float("nan")  # average precision, the step-wise area under the PR curve
    pr_precision: list[float] = field(default_factory=list)
    pr_recall: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """The scalar metrics as a flat dict."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
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
    pr_auc = float(average_precision_score(y, scores)) if both_classes else float("nan")
    pr_p: list[float] = []
    pr_r: list[float] = []
    if both_classes:
        p, r, _ = precision_recall_curve(y, scores)
        idx = _downsample(len(p))
        pr_p, pr_r = p[idx].tolist(), r[idx].tolist()
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
        pr_auc=pr_auc,
        pr_precision=[float(v) for v in pr_p],
        pr_recall=[float(v) for v in pr_r],
    )


@dataclass(frozen=True)
class ThresholdPolicy:
    """How the decision threshold is chosen from scored, labelled rows.

    `f1`: the threshold with the highest F1. `cost`: the threshold with the lowest total cost
    `cost_fp * FP + cost_fn * FN` (e.g. a retention offer costs 1, a lost customer 5: cost_fn=5).
    """

    objective: str = "f1"
    cost_fp: float = 1.0
    cost_fn: float = 5.0

    def __post_init__(self) -> None:
        if self.objective not in ("f1", "cost"):
            raise ValueError(f"threshold objective must be 'f1' or 'cost', not {self.objective!r}")
        if self.cost_fp < 0 or self.cost_fn < 0 or self.cost_fp + self.cost_fn == 0:
            raise ValueError("threshold costs must be >= 0 and not both 0")

    def describe(self) -> str:
        if self.objective == "f1":
            return "threshold maximising F1"
        return f"threshold minimising {self.cost_fp:g}*FP + {self.cost_fn:g}*FN"


def choose_threshold(
    y_true: Any, y_score: Any, policy: ThresholdPolicy | None = None, n_candidates: int = 201
) -> float:
    """The best threshold for `policy` among score quantiles (ties go to the lowest threshold)."""
    policy = policy or ThresholdPolicy()
    y = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(y_score, dtype=float).ravel()
    if y.size == 0 or y.shape != scores.shape:
        raise ValueError("choose_threshold needs as many labels as scores, and at least one")
    # Observed scores only (inverted CDF), so a threshold is always a score some row actually has.
    candidates = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, n_candidates), method="inverted_cdf"))
    pred = scores[None, :] >= candidates[:, None]  # candidates x rows
    tp = (pred & (y == 1)).sum(axis=1)
    fp = (pred & (y == 0)).sum(axis=1)
    fn = (~pred & (y == 1)).sum(axis=1)
    if policy.objective == "f1":
        denom = 2 * tp + fp + fn
        value = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        best = int(np.argmax(value))
    else:
        cost = policy.cost_fp * fp + policy.cost_fn * fn
        best = int(np.argmin(cost))
    return float(candidates[best])


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


def save_pr_png(report: ClassificationReport, path: str | Path) -> Path:
    """Plot the precision-recall curve to a PNG file."""
    plt = _pyplot()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    try:
        ax.plot(report.pr_recall, report.pr_precision, label=f"PR (AP = {report.pr_auc:.3f})")
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_title("Precision-recall curve")
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(dest, format="png", dpi=100)
    finally:
        plt.close(fig)
    return dest
