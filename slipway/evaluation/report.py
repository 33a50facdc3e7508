"""A self-contained HTML evaluation report (pictures inlined), rendered by the KFP UI as an HTML artifact."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import Any

from slipway.evaluation.classification import ClassificationReport, save_confusion_png, save_roc_png


def _inline_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def write_evaluation_html(
    report: ClassificationReport, metrics: dict[str, Any], path: str | Path, title: str = "evaluation"
) -> Path:
    """Write one HTML page with the metrics table, the ROC curve and the confusion matrix."""
    with tempfile.TemporaryDirectory() as work:
        roc = save_roc_png(report, Path(work) / "roc.png")
        cm = save_confusion_png(report, Path(work) / "confusion.png")
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{v:.4f}</td></tr>"
            if isinstance(v, float)
            else f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in metrics.items()
        )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}img{max-width:480px}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><table>{rows}</table>"
            f"<h2>ROC curve</h2><img alt='ROC curve' src='{_inline_png(Path(roc))}'>"
            f"<h2>Confusion matrix</h2><img alt='confusion matrix' src='{_inline_png(Path(cm))}'>"
            "</body></html>"
        )
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
