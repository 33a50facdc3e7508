"""Model card (Mitchell et al. 2019, shortened): what a model is, what it was trained on, how well it does with
intervals, how it compares with the model in production, and where it should not be trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from slipway.evaluation.importance import FeatureImportance
from slipway.evaluation.report import importance_markdown, markdown_table, markdown_to_html
from slipway.evaluation.stats import MetricSummary

CHURN_LIMITS = [
    "Trained on one telecom operator's customers (IBM Telco sample, or synthetic data of the same shape); "
    "other markets, products or time periods need their own evaluation before use.",
    "Probabilities of class-weighted models are not calibrated frequencies: use the stated threshold, or "
    "recalibrate before reading them as churn rates.",
    "Correlational: a feature's importance says what the model relies on, not what causes churn.",
    "Sensitive attributes (gender, SeniorCitizen) are model inputs; check outcomes per group before acting on "
    "predictions.",
    "Cross-validation intervals use the Nadeau-Bengio correction but still assume the future looks like the "
    "training data; watch the drift reports.",
]


def features_from_schema(schema: dict[str, Any]) -> dict[str, str]:
    """column -> "allowed values" or "type [min, max]" from a registry feature schema."""
    out: dict[str, str] = {}
    for f in schema.get("features", []):
        if "allowed" in f:
            out[f["name"]] = ", ".join(map(str, f["allowed"]))
        else:
            out[f["name"]] = f"{f.get('type', '?')} [{f.get('min', '')}, {f.get('max', '')}]"
    return out


class ModelCard(BaseModel):
    """Everything the card shows; `render_markdown` / `render_html` turn it into the stored files."""

    name: str
    version: str = Field(description="registry version, or 'next' before registration")
    algorithm: str
    created_by: str = "churn-training pipeline"
    training_data_sha256: str
    n_rows: int
    positive_rate: float | None = None
    features: dict[str, str] = Field(default_factory=dict, description="column -> type or allowed values")
    feature_steps: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    test_metrics: dict[str, float] = Field(default_factory=dict)
    cv_summary: dict[str, MetricSummary] = Field(default_factory=dict)
    cv_protocol: str = ""
    threshold: float | None = None
    threshold_policy: str = ""
    comparison_markdown: str = Field("", description="the model comparison table of the selection step")
    decision: dict[str, Any] | None = None
    importances: list[FeatureImportance] = Field(default_factory=list)
    limits: list[str] = Field(default_factory=lambda: list(CHURN_LIMITS))

    def render_markdown(self) -> str:
        lines = [f"# Model card: {self.name} v{self.version}", ""]
        lines += [
            "## Model",
            f"- algorithm: `{self.algorithm}`",
            f"- feature steps: {self.feature_steps or 'n/a'}",
            f"- produced by: {self.created_by}",
            "",
            "## Data",
            f"- training data sha256: `{self.training_data_sha256}`",
            f"- rows: {self.n_rows}"
            + (f", positive rate {self.positive_rate:.2%}" if self.positive_rate is not None else ""),
            "",
        ]
        if self.features:
            lines += ["## Features", "", markdown_table(["column", "type / values"], list(self.features.items())), ""]
        if self.params:
            lines += ["## Parameters", "", markdown_table(["parameter", "value"], sorted(self.params.items())), ""]
        lines += ["## Performance", ""]
        if self.cv_summary:
            lines += [
                f"Cross-validation on the training part ({self.cv_protocol}); mean ± sd and 95 % interval "
                "(Nadeau-Bengio corrected):",
                "",
                markdown_table(
                    ["metric", "mean ± sd [95 % CI]"], [[k, s.format()] for k, s in self.cv_summary.items()]
                ),
                "",
            ]
        if self.test_metrics:
            lines += [
                "Held-out test part (never used for selection or tuning):",
                "",
                markdown_table(["metric", "value"], [[k, f"{v:.4f}"] for k, v in self.test_metrics.items()]),
                "",
            ]
        if self.threshold is not None:
            lines += [f"Decision threshold: **{self.threshold:.3f}** ({self.threshold_policy}).", ""]
        if self.comparison_markdown:
            demoted = "\n".join("#" + ln if ln.startswith("#") else ln for ln in self.comparison_markdown.splitlines())
            lines += ["## Model selection", "", demoted, ""]
        lines += ["## Comparison with the champion", ""]
        if self.decision:
            d = self.decision
            lines += [
                f"- decision: **{'promote' if d.get('promote') else 'do not promote'}**",
                f"- {d.get('reason', '')}",
                f"- method: {d.get('method', '')}",
                "",
            ]
        else:
            lines += ["- no comparison was made", ""]
        if self.importances:
            lines += [
                "## Permutation importance (held-out rows, drop in ROC-AUC)",
                "",
                importance_markdown(self.importances),
                "",
            ]
        lines += ["## Known limits", "", *[f"- {limit}" for limit in self.limits], ""]
        return "\n".join(lines)

    def render_html(self) -> str:
        return markdown_to_html(self.render_markdown(), f"Model card: {self.name} v{self.version}")

    def write(self, markdown_path: str | Path, html_path: str | Path) -> tuple[Path, Path]:
        md, page = Path(markdown_path), Path(html_path)
        md.write_text(self.render_markdown(), encoding="utf-8")
        page.write_text(self.render_html(), encoding="utf-8")
        return md, page
