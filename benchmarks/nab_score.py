"""NAB score of the streaming detector on the machine-temperature series, with the null and perfect baselines.

    .venv/bin/python benchmarks/nab_score.py [--compare-hst]

Reads ../shared/datasets/nab-iot (NAB realKnownCause/machine_temperature_system_failure.csv and its four labelled
windows). Prints the configured detector's score (standard profile), a small sensitivity table around the
defaults, and with --compare-hst river's HalfSpaceTrees under the same alerting rule.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slipway.streaming.detector import DetectorConfig  # noqa: E402
from slipway.streaming.nab import nab_score, score_detector_on_nab  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "nab-iot"
CSV = DATA / "machine_temperature_system_failure.csv"
WINDOWS = DATA / "anomaly_windows.json"


def hst_flags(values: list[float], threshold: float, cooldown: int) -> list[bool]:
    from river import anomaly

    lo, hi = min(values[:750]), max(values[:750])  # scale on the probationary period only
    model = anomaly.HalfSpaceTrees(n_trees=25, height=12, window_size=250, seed=42)
    flags, quiet = [], 0
    for v in values:
        x = {"v": (v - lo) / (hi - lo)}
        score = model.score_one(x)
        model.learn_one(x)
        hit = quiet == 0 and score >= threshold
        quiet = cooldown if hit else max(0, quiet - 1)
        flags.append(hit)
    return flags


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare-hst", action="store_true")
    args = ap.parse_args()
    if not CSV.exists():
        sys.exit(f"{CSV} not found: the NAB series lives in ../shared/datasets/nab-iot beside the repository")
    started = time.perf_counter()
    default = score_detector_on_nab(CSV, WINDOWS)
    elapsed = time.perf_counter() - started
    out: dict[str, object] = {
        "detector": "robust z-score (river RollingQuantile + RollingIQR)",
        "default": {"config": DetectorConfig().__dict__, **default.to_dict(), "seconds": round(elapsed, 2)},
    }
    table = []
    for window in (288, 576, 2016):
        for threshold in (3.0, 4.0, 5.0):
            r = score_detector_on_nab(CSV, WINDOWS, DetectorConfig(window=window, threshold=threshold, cooldown=288))
            table.append(
                {
                    "window": window,
                    "threshold": threshold,
                    "normalized": round(r.normalized, 1),
                    "tp": r.true_positives,
                    "fp": r.false_positives,
                }
            )
    out["sensitivity"] = table
    if args.compare_hst:
        import pandas as pd

        frame = pd.read_csv(CSV, parse_dates=["timestamp"])
        windows = json.loads(WINDOWS.read_text())[CSV.name]
        values = frame["value"].astype(float).tolist()
        hst = []
        for threshold in (0.7, 0.8, 0.9):
            t0 = time.perf_counter()
            r = nab_score(frame["timestamp"], hst_flags(values, threshold, 288), windows)
            hst.append(
                {
                    "threshold": threshold,
                    "normalized": round(r.normalized, 1),
                    "tp": r.true_positives,
                    "fp": r.false_positives,
                    "us_per_reading": round((time.perf_counter() - t0) / len(values) * 1e6),
                }
            )
        out["half_space_trees"] = hst
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
