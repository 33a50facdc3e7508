"""Training time per algorithm, and cross-validation wall time fanned out over 2 processes vs sequential.

    .venv/bin/python benchmarks/bench_training.py                 # real Telco + housing files when present
    .venv/bin/python benchmarks/bench_training.py --synthetic     # synthetic stand-ins of the same shape

1. One fit of each churn model (and each housing regressor) on the whole file, single-threaded, median of
   `--fit-repeats` fits.
2. The four churn models under the same repeated stratified 5-fold x 2 (40 fits): `n_jobs=1` (sequential) vs
   `n_jobs=2` (joblib, one process per fold, each fit single-threaded). Same folds, same scores: checked.
3. The peer of the single-thread policy: one HistGradientBoosting fit with OpenMP limited to 1 thread vs 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slipway.data.churn import generate_synthetic_churn  # noqa: E402
from slipway.data.churn_schema import NUMERIC_FEATURES  # noqa: E402
from slipway.data.housing import generate_synthetic_housing, load_housing_csv  # noqa: E402
from slipway.training.churn import ALGORITHMS, build_pipeline, compare_algorithms, split_xy  # noqa: E402
from slipway.training.housing import REGRESSORS, build_housing_pipeline  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"


def load_churn(synthetic: bool):  # type: ignore[no-untyped-def]
    import pandas as pd

    path = DATASETS / "telco-churn" / "Telco-Customer-Churn.csv"
    if synthetic or not path.exists():
        raw = generate_synthetic_churn(7043, seed=42)
        source = "synthetic churn, 7043 rows"
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        source = f"{path.name}, 7043 rows"
    raw["TotalCharges"] = raw["TotalCharges"].str.strip().replace("", "0")
    for col in NUMERIC_FEATURES:
        raw[col] = pd.to_numeric(raw[col])
    return raw, source


def load_housing(synthetic: bool):  # type: ignore[no-untyped-def]
    path = DATASETS / "california-housing" / "housing.csv"
    if synthetic or not path.exists():
        return generate_synthetic_housing(20640, seed=42), "synthetic housing, 20640 rows"
    return load_housing_csv(path), f"{path.name}, 20640 rows"


def median_fit_seconds(make, x, y, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        model = make()
        with threadpool_limits(limits=1):
            start = time.perf_counter()
            model.fit(x, y)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic stand-ins")
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    churn, churn_source = load_churn(args.synthetic)
    housing, housing_source = load_housing(args.synthetic)
    x, y = split_xy(churn)
    results: dict = {"churn_source": churn_source, "housing_source": housing_source, "fit_seconds": {}}
    for algorithm in ALGORITHMS:
        secs = median_fit_seconds(lambda a=algorithm: build_pipeline(a), x, y, args.fit_repeats)
        results["fit_seconds"][f"churn/{algorithm}"] = secs
        print(f"fit churn/{algorithm}: {secs:.2f} s", flush=True)
    hx, hy = housing.drop(columns=["median_house_value"]), housing["median_house_value"]
    for algorithm in REGRESSORS:
        secs = median_fit_seconds(lambda a=algorithm: build_housing_pipeline(a), hx, hy, args.fit_repeats)
        results["fit_seconds"][f"housing/{algorithm}"] = secs
        print(f"fit housing/{algorithm}: {secs:.2f} s", flush=True)

    walls = {}
    tables = {}
    for n_jobs in (1, 2):
        start = time.perf_counter()
        cvs = compare_algorithms(churn, n_splits=5, n_repeats=2, seed=42, n_jobs=n_jobs)
        walls[n_jobs] = time.perf_counter() - start
        tables[n_jobs] = {c.name: c.scores("roc_auc") for c in cvs}
        print(f"4 models x 5-fold x 2 repeats, n_jobs={n_jobs}: {walls[n_jobs]:.1f} s", flush=True)
    if tables[1] != tables[2]:
        raise SystemExit("parallel and sequential CV disagree: the fan-out is not deterministic")
    results["cv_wall_seconds"] = {"sequential": walls[1], "n_jobs_2": walls[2], "speedup": walls[1] / walls[2]}
    results["cv_roc_auc_mean"] = {k: statistics.fmean(v) for k, v in tables[1].items()}

    hgb = build_pipeline("gradient_boosting")
    threads = {}
    for n in (1, 2):
        with threadpool_limits(limits=n):
            start = time.perf_counter()
            hgb.fit(x, y)
            threads[n] = time.perf_counter() - start
    results["hgb_fit_seconds_by_openmp_threads"] = threads
    print(f"HGB fit, 1 thread {threads[1]:.2f} s vs 2 threads {threads[2]:.2f} s", flush=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
