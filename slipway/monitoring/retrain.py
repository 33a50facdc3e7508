"""Retraining triggers: what a drift check starts when it finds drift.

- `LocalPipelineTrigger` runs a pipeline on this machine with kfp.local (`pipelines.run_local`).
- `KfpRunTrigger` creates a run from a compiled package on a KFP cluster (`kfp.Client`).
- `CallableTrigger` wraps any function (in-process retraining, tests).

Each returns a `RetrainResult`; a failure raises `MonitoringError` so the check fails visibly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from slipway.errors import MonitoringError

logger = logging.getLogger(__name__)


class RetrainResult(BaseModel):
    """What a trigger started: where it ran, its run id or folder, and the version it registered when known."""

    mode: str
    pipeline: str
    run_id: str = ""
    run_dir: str = ""
    registered_version: int | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class RetrainTrigger(Protocol):
    def trigger(self, *, reason: str, arguments: dict[str, Any]) -> RetrainResult: ...


def export_labelled_window(frame: pd.DataFrame, features: list[str], path: str | Path) -> Path:
    """Write the labelled rows of a payload window as a Telco-style CSV the churn-training pipeline ingests.

    `customerID` comes from the row id, `Churn` from the 0/1 label. Rows still waiting for a label are left out.
    """
    labelled = frame[frame["label"].notna()]
    if labelled.empty:
        raise MonitoringError("no labelled rows in the window: retraining needs delayed labels in _labels/")
    out = labelled[features].copy()
    out.insert(0, "customerID", [str(r).replace(":", "-") for r in labelled["row_id"]])
    out["Churn"] = ["Yes" if int(v) == 1 else "No" for v in labelled["label"]]
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(dest, index=False)
    return dest


class LocalPipelineTrigger:
    """Run `pipeline` with kfp.local under `pipeline_root`; `base_arguments` are merged under each call's."""

    def __init__(
        self,
        pipeline: str,
        pipeline_root: str | Path,
        base_arguments: dict[str, Any] | None = None,
        registry: Any = None,
        model_name: str = "churn",
    ) -> None:
        self.pipeline = pipeline
        self.pipeline_root = Path(pipeline_root)
        self.base_arguments = dict(base_arguments or {})
        self.registry = registry
        self.model_name = model_name

    def trigger(self, *, reason: str, arguments: dict[str, Any]) -> RetrainResult:
        from pipelines.run_local import run_pipeline_locally

        args = {**self.base_arguments, **arguments}
        before = self._latest()
        logger.info("retraining locally: %s (%s)", self.pipeline, reason)
        try:
            run_dir = run_pipeline_locally(self.pipeline, self.pipeline_root, **args)
        except Exception as e:  # kfp.local raises RuntimeError, components anything
            raise MonitoringError(f"local {self.pipeline} run failed: {e}") from e
        after = self._latest()
        return RetrainResult(
            mode="local",
            pipeline=self.pipeline,
            run_dir=str(run_dir),
            registered_version=after if after != before else None,
            arguments=args,
        )

    def _latest(self) -> int | None:
        if self.registry is None:
            return None
        versions = self.registry.list_versions(self.model_name)
        return versions[-1].version if versions else None


class KfpRunTrigger:
    """Create a run of a compiled pipeline package on a KFP cluster."""

    def __init__(
        self,
        host: str,
        package_path: str | Path,
        *,
        pipeline: str = "churn-training",
        experiment: str = "slipway",
        base_arguments: dict[str, Any] | None = None,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.host = host
        self.package_path = Path(package_path)
        self.pipeline = pipeline
        self.experiment = experiment
        self.base_arguments = dict(base_arguments or {})
        self.client_factory = client_factory

    def _client(self) -> Any:
        if self.client_factory is not None:
            return self.client_factory(host=self.host)
        import kfp

        return kfp.Client(host=self.host)

    def trigger(self, *, reason: str, arguments: dict[str, Any]) -> RetrainResult:
        if not self.package_path.is_file():
            raise MonitoringError(
                f"compiled pipeline {self.package_path} not found: run `slipway compile` and set "
                "SLIPWAY_KFP_PIPELINE_PACKAGE"
            )
        args = {**self.base_arguments, **arguments}
        run_name = f"{self.pipeline}-drift-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        try:
            run = self._client().create_run_from_pipeline_package(
                str(self.package_path), arguments=args, run_name=run_name, experiment_name=self.experiment
            )
        except Exception as e:  # the KFP client raises ApiException, connection errors, ...
            raise MonitoringError(f"could not create a {self.pipeline} run on {self.host}: {e}") from e
        run_id = str(getattr(run, "run_id", "") or "")
        logger.info("retraining on KFP %s: run %s (%s)", self.host, run_id, reason)
        return RetrainResult(mode="kfp", pipeline=self.pipeline, run_id=run_id, arguments=args)


class CallableTrigger:
    """Retrain by calling `func(reason=..., arguments=...)`, which returns the registered version (or None)."""

    def __init__(self, func: Callable[..., int | None], name: str = "in-process") -> None:
        self.func = func
        self.name = name

    def trigger(self, *, reason: str, arguments: dict[str, Any]) -> RetrainResult:
        version = self.func(reason=reason, arguments=arguments)
        return RetrainResult(mode="in-process", pipeline=self.name, registered_version=version, arguments=arguments)


def train_and_register(
    registry: Any,
    name: str,
    training_frame: pd.DataFrame,
    *,
    algorithm: str = "logistic_regression",
    seed: int = 42,
    cv_folds: int = 1,
    annotations: dict[str, Any] | None = None,
    reference_predictions: np.ndarray | None = None,
) -> int:
    """Train a churn model in this process and register it as a candidate with its drift reference files.

    The same library calls as the churn-training pipeline's train and register steps, without Feast: the
    in-process retrain path for small data and for tests. `reference_predictions` are out-of-fold scores of the
    training rows (computed with 3 folds when not given). Returns the new version.
    """
    import tempfile

    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from slipway.data.churn_schema import FEATURE_COLUMNS, TARGET_COLUMN, feature_schema
    from slipway.monitoring.profile import write_reference_files
    from slipway.registry import sha256_dataframe
    from slipway.training.churn import save_model, split_xy, train_churn

    result = train_churn(training_frame, algorithm=algorithm, seed=seed, cv_folds=cv_folds)
    oof = reference_predictions
    if oof is None:  # out-of-fold scores as the prediction-drift reference: what the model does on unseen rows
        x, y = split_xy(training_frame)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        oof = cross_val_predict(clone(result.pipeline), x, y, cv=folds, method="predict_proba")[:, 1]
    with tempfile.TemporaryDirectory() as work:
        model_path = save_model(result.pipeline, Path(work) / "model.joblib")
        reference = write_reference_files(
            training_frame, FEATURE_COLUMNS, Path(work) / "reference", predictions=oof, target=TARGET_COLUMN
        )
        meta = registry.register(
            name,
            model_path,
            metrics=result.metrics,
            params={k: str(v) for k, v in result.params.items()},
            training_data_sha256=sha256_dataframe(training_frame),
            feature_schema=feature_schema(),
            extra_files=dict(reference),
            annotations=dict(annotations or {}),
        )
    return int(meta.version)


def retrain_challenger(
    registry: Any,
    name: str,
    training_frame: pd.DataFrame,
    *,
    algorithms: tuple[str, ...] = ("logistic_regression", "gradient_boosting"),
    folds: int = 3,
    seed: int = 42,
    annotations: dict[str, Any] | None = None,
) -> int:
    """Pick the algorithm with the best out-of-fold ROC-AUC on `training_frame`, train it and register it as a
    candidate (with its drift reference, whose prediction scores are the winner's out-of-fold scores). The
    selection is stored as the `selection` annotation; whether the candidate replaces the champion is for
    `slipway.training.champion` to decide."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from slipway.training.churn import build_pipeline, split_xy

    x, y = split_xy(training_frame)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = {
        alg: cross_val_predict(build_pipeline(alg, seed), x, y, cv=splits, method="predict_proba")[:, 1]
        for alg in algorithms
    }
    scores = {alg: float(roc_auc_score(y, p)) for alg, p in oof.items()}
    best = max(scores, key=lambda alg: scores[alg])
    logger.info("retrain selection on %d rows: %s -> %s", len(training_frame), scores, best)
    return train_and_register(
        registry,
        name,
        training_frame,
        algorithm=best,
        seed=seed,
        annotations={**(annotations or {}), "selection": {"oof_roc_auc": scores, "folds": folds, "chosen": best}},
        reference_predictions=oof[best],
    )
