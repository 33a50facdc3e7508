"""`drift-monitoring`: check a window of served traffic for drift; alert and start retraining when it drifted.

One step, so kfp.local runs it as the cluster does (kfp.local does not run dsl.If): the decision to retrain is
taken inside the step, by the same `slipway.monitoring.loop.check_drift` the CLI and the CronJob run.
"""

from kfp import dsl

from components.monitoring import check_serving_drift


@dsl.pipeline(
    name="drift-monitoring",
    description="Compare a window of the model's payload logs with the reference profile stored with the "
    "production version (Evidently tests per feature, dataset and prediction drift; classification quality once "
    "labels arrived); write HTML/JSON reports and Prometheus gauges; alert and trigger churn-training on drift.",
)
def drift_monitoring(
    model_name: str = "churn",
    window: str = "1h",
    end: str = "",
    slipway_home: str = "/tmp/slipway",
    payload_root: str = "",
    retrain_on_drift: bool = True,
) -> None:
    check_serving_drift(
        model_name=model_name,
        window=window,
        end=end,
        slipway_home=slipway_home,
        payload_root=payload_root,
        retrain_on_drift=retrain_on_drift,
    ).set_display_name("check-serving-drift").set_caching_options(False)
