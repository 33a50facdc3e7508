"""Comparison tables, the Markdown-to-HTML converter, permutation importance and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slipway.data.churn_schema import feature_schema
from slipway.evaluation.classification import evaluate_classifier
from slipway.evaluation.importance import permutation_importances
from slipway.evaluation.model_card import ModelCard, features_from_schema
from slipway.evaluation.report import (
    classification_comparison_markdown,
    classification_folds_markdown,
    markdown_table,
    markdown_to_html,
    write_evaluation_html,
)
from slipway.training.churn import build_pipeline, compare_algorithms, split_xy
from tests.unit.test_training import synthetic_churn

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def comparison():  # type: ignore[no-untyped-def]
    return compare_algorithms(synthetic_churn(240, seed=8), ("logistic_regression", "svm"), n_splits=3, n_repeats=1)


def test_comparison_table_has_one_row_per_model_with_intervals(comparison) -> None:  # type: ignore[no-untyped-def]
    table = classification_comparison_markdown(comparison)
    lines = table.splitlines()
    assert len(lines) == 2 + 2
    assert lines[0].startswith("| model | params | ROC-AUC | PR-AUC | F1")
    first = comparison[0].summary["roc_auc"]
    assert f"{first.mean:.4f} ± {first.sd:.4f} [{first.ci_low:.4f}, {first.ci_high:.4f}]" in lines[2]
    folds = classification_folds_markdown(comparison[0])
    assert len(folds.splitlines()) == 2 + 3


def test_markdown_to_html_renders_headings_tables_lists_and_escapes() -> None:
    md = "# Title <x>\n\n" + markdown_table(["a", "b|c"], [[1, "<script>"]]) + "\n\n- item `code`\n\ntext **bold**"
    page = markdown_to_html(md, "t")
    assert "<h1>Title &lt;x&gt;</h1>" in page
    assert "<th>b|c</th>" in page and "<td>&lt;script&gt;</td>" in page
    assert "<li>item <code>code</code></li>" in page
    assert "<strong>bold</strong>" in page
    assert "<script>" not in page


def test_permutation_importance_finds_the_signal_columns() -> None:
    df = synthetic_churn(500, seed=9)
    x, y = split_xy(df)
    model = build_pipeline("logistic_regression").fit(x, y)
    importances = permutation_importances(model, x, y, n_repeats=3, seed=0)
    assert len(importances) == x.shape[1]
    top = {i.feature for i in importances[:3]}
    assert {"Contract", "tenure"} <= top
    noise = next(i for i in importances if i.feature == "gender")
    assert abs(noise.importance_mean) < 0.02


def test_evaluation_html_has_curves_importance_and_folds(tmp_path: Path, comparison) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    report = evaluate_classifier(y, np.clip(y * 0.4 + rng.uniform(0, 0.6, 200), 0, 1))
    df = synthetic_churn(200, seed=1)
    x, yy = split_xy(df)
    imps = permutation_importances(build_pipeline().fit(x, yy), x, yy, n_repeats=2)
    page = write_evaluation_html(
        report, report.metrics(), tmp_path / "r.html", importances=imps, cv=comparison[0]
    ).read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "Precision-recall curve" in page and "Permutation importance" in page
    assert "Cross-validation per fold" in page and "threshold maximising F1" in page


def test_model_card_covers_data_metrics_decision_and_limits(tmp_path: Path, comparison) -> None:  # type: ignore[no-untyped-def]
    cv = comparison[0]
    card = ModelCard(
        name="churn",
        version="3",
        algorithm=cv.name,
        training_data_sha256="ab" * 32,
        n_rows=240,
        positive_rate=0.3,
        features=features_from_schema(feature_schema()),
        feature_steps="one-hot, scaled",
        params={"algorithm": cv.name, "seed": 42},
        test_metrics={"roc_auc": 0.81},
        cv_summary=cv.summary,
        cv_protocol="1x repeated stratified 3-fold",
        threshold=cv.threshold,
        threshold_policy=cv.threshold_policy,
        comparison_markdown=classification_comparison_markdown(comparison),
        decision={"promote": False, "reason": "challenger 0.80 vs champion 0.81", "method": "corrected t"},
    )
    md_path, html_path = card.write(tmp_path / "model_card.md", tmp_path / "model_card.html")
    md = md_path.read_text()
    assert md.startswith("# Model card: churn v3")
    assert "ab" * 32 in md
    assert "Contract" in md and "Month-to-month" in md
    assert cv.summary["roc_auc"].format() in md
    assert "do not promote" in md and "champion 0.81" in md
    assert "## Known limits" in md and "calibrated" in md
    page = html_path.read_text()
    assert page.count("<table>") >= 4 and "<h2>Known limits</h2>" in page
