"""Reports the KFP UI renders: a self-contained HTML evaluation page (pictures inlined) and Markdown tables
(model comparison, per-fold metrics, ablation, permutation importance), with a small converter from that
Markdown subset to HTML."""

from __future__ import annotations

import base64
import html
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipway.evaluation.classification import ClassificationReport, save_confusion_png, save_pr_png, save_roc_png
from slipway.evaluation.importance import FeatureImportance

if TYPE_CHECKING:
    from slipway.training.ablation import AblationRow
    from slipway.training.cv import ClassificationCV, RegressionCV

_PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em}td,th{padding:2px 10px;border-bottom:1px solid #ddd;"
    "text-align:left}table{border-collapse:collapse;margin:1em 0}img{max-width:480px}code{background:#f4f4f4}"
)


def _inline_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; `|` inside cells is escaped."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def classification_comparison_markdown(results: Sequence[ClassificationCV], digits: int = 4) -> str:
    """One row per model: every metric as mean ± sd [95 % interval] over the same folds, best ROC-AUC first."""
    header = ["model", "params", "ROC-AUC", "PR-AUC", "F1", "precision", "recall", "accuracy", "threshold", "fit s"]
    rows = []
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items() if k != "algorithm") or "defaults"
        s = r.summary
        rows.append(
            [
                r.name,
                params,
                *(s[m].format(digits) for m in ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy")),
                f"{r.threshold:.3f}",
                f"{r.fit_seconds:.1f}",
            ]
        )
    return markdown_table(header, rows)


def classification_folds_markdown(cv: ClassificationCV) -> str:
    """Per-fold metrics and confusion matrices ([[TN, FP], [FN, TP]]) of one cross-validation."""
    header = ["repeat", "fold", "positives (test)", "threshold", "ROC-AUC", "PR-AUC", "F1", "precision", "recall"]
    header += ["accuracy", "confusion [[TN,FP],[FN,TP]]"]
    rows = [
        [
            f.repeat,
            f.fold,
            f"{f.test_positive_rate:.3%}",
            f"{f.threshold:.3f}",
            *(f"{getattr(f, m):.4f}" for m in ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy")),
            f.confusion_matrix,
        ]
        for f in cv.folds
    ]
    return markdown_table(header, rows)


def regression_comparison_markdown(results: Sequence[RegressionCV]) -> str:
    """One row per regressor: MSE, RMSE, MAE (USD) and R², each mean ± sd [95 % interval], best RMSE first."""
    header = ["model", "RMSE", "MSE", "MAE", "R²", "fit s"]
    rows = []
    for r in results:
        s = r.summary
        rows.append(
            [
                r.name,
                s["rmse"].format(0),
                f"{s['mse'].mean:.4g} ± {s['mse'].sd:.3g}",
                s["mae"].format(0),
                s["r2"].format(4),
                f"{r.fit_seconds:.1f}",
            ]
        )
    return markdown_table(header, rows)


def regression_folds_markdown(cv: RegressionCV) -> str:
    rows = [
        [f.repeat, f.fold, f.n_test, f"{f.mse:.4g}", f"{f.rmse:.0f}", f"{f.mae:.0f}", f"{f.r2:.4f}"] for f in cv.folds
    ]
    return markdown_table(["repeat", "fold", "rows", "MSE", "RMSE", "MAE", "R²"], rows)


def ablation_markdown(rows: Sequence[AblationRow]) -> str:
    digits = {"roc_auc": 4, "rmse": 0}
    out = []
    for r in rows:
        d = digits.get(r.metric, 4)
        out.append([r.dataset, r.algorithm, r.step, r.metric, r.score.format(d), f"{r.delta:+.{d}f}"])
    return markdown_table(["dataset", "model", "feature steps", "metric", "mean ± sd [95 % CI]", "Δ vs baseline"], out)


def importance_markdown(importances: Sequence[FeatureImportance], top: int = 10) -> str:
    rows = [[i.feature, f"{i.importance_mean:.4f}", f"{i.importance_sd:.4f}"] for i in importances[:top]]
    return markdown_table(["feature", "mean score drop", "sd"], rows)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def markdown_to_html(markdown: str, title: str) -> str:
    """A full HTML page from the Markdown subset these reports use: #-headings, tables, `-` lists, paragraphs."""
    body: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            cells = [re.split(r"(?<!\\)\|", row.strip()[1:-1]) for row in block if not re.match(r"^\|(-+\|)+$", row)]
            cells = [[c.strip().replace("\\|", "|") for c in row] for row in cells]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
            continue
        if m := re.match(r"^(#{1,4}) (.*)$", line):
            level = len(m.group(1))
            body.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_PAGE_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_evaluation_html(
    report: ClassificationReport,
    metrics: dict[str, Any],
    path: str | Path,
    title: str = "evaluation",
    *,
    importances: Sequence[FeatureImportance] | None = None,
    cv: ClassificationCV | None = None,
) -> Path:
    """One HTML page: metrics, ROC and PR curves, confusion matrix, and optionally permutation importance and
    the per-fold cross-validation table."""
    with tempfile.TemporaryDirectory() as work:
        roc = save_roc_png(report, Path(work) / "roc.png")
        pr = save_pr_png(report, Path(work) / "pr.png")
        cm = save_confusion_png(report, Path(work) / "confusion.png")
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{v:.4f}</td></tr>"
            if isinstance(v, float)
            else f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in metrics.items()
        )
        extra = ""
        if importances:
            inner = markdown_to_html(importance_markdown(importances, top=len(importances)), "")
            extra += "<h2>Permutation importance (held-out rows, drop in ROC-AUC)</h2>" + _body(inner)
        if cv is not None:
            inner = markdown_to_html(classification_folds_markdown(cv), "")
            extra += f"<h2>Cross-validation per fold ({html.escape(cv.threshold_policy)})</h2>" + _body(inner)
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1><table>{rows}</table>"
            f"<h2>ROC curve</h2><img alt='ROC curve' src='{_inline_png(Path(roc))}'>"
            f"<h2>Precision-recall curve</h2><img alt='precision-recall curve' src='{_inline_png(Path(pr))}'>"
            f"<h2>Confusion matrix</h2><img alt='confusion matrix' src='{_inline_png(Path(cm))}'>"
            f"{extra}</body></html>"
        )
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out


def _body(page: str) -> str:
    return page.split("<body>", 1)[1].rsplit("</body>", 1)[0]
