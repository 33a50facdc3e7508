"""NAB scoring (Lavin & Ahmad 2015, numenta/NAB `nab/sweeper.py`) for one labelled series, plus window recall.

Standard profile: A_TP = 1, A_FP = -0.11, A_FN = -1. A detection inside a window scores the scaled sigmoid of its
position (earlier is better; only the best, i.e. first, detection of a window counts). A detection outside every
window is a false positive weighted by how far it lies past the preceding window (-1 before any window). Each
undetected window costs A_FN. Rows in the probationary period (the first 15 %, at most 750 rows) are not scored.
The normalised score maps the null detector (no detections: every window missed) to 0 and the perfect detector
(one detection at the start of each window) to 100.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from slipway.streaming.detector import DetectorConfig, SensorDetectors

__all__ = ["STANDARD", "NabProfile", "NabResult", "nab_score", "scaled_sigmoid", "score_detector_on_nab"]


@dataclass(frozen=True)
class NabProfile:
    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = NabProfile()


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: 1 near the start of a window, 0 at its end, towards -1 well after it."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass(frozen=True)
class NabResult:
    raw: float
    null: float
    perfect: float
    normalized: float
    true_positives: int  # windows detected
    false_positives: int  # detections outside every window (after probation)
    false_negatives: int  # windows missed
    detections: int
    window_precision: float  # share of scored detections that fall inside a window
    window_recall: float  # share of windows with at least one detection

    def to_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def probationary_length(n_rows: int, percent: float = 0.15) -> int:
    return min(math.floor(percent * n_rows), math.floor(percent * 5000))


def _raw_score(
    timestamps: Sequence[pd.Timestamp],
    detected: Sequence[bool],
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    profile: NabProfile,
    probation: int,
) -> tuple[float, int, int, int, int]:
    index = {t: i for i, t in enumerate(timestamps)}
    bounds = []
    for start, end in windows:
        if start not in index or end not in index:
            raise ValueError(f"window ({start}, {end}) does not start and end on series timestamps")
        bounds.append((index[start], index[end]))
    bounds.sort()
    max_tp = scaled_sigmoid(-1.0)
    window_best: dict[int, float] = {}
    fp_total, fp_count, in_window = 0.0, 0, 0
    w = 0
    prev_right: int | None = None
    prev_width = 0.0
    for i, hit in enumerate(detected):
        while w < len(bounds) and bounds[w][1] < i:
            prev_right, prev_width = bounds[w][1], float(bounds[w][1] - bounds[w][0] + 1)
            w += 1
        inside = w < len(bounds) and bounds[w][0] <= i <= bounds[w][1]
        if not hit or i < probation:
            continue
        if inside:
            left, right = bounds[w]
            position = -(right - i + 1) / float(right - left + 1)
            score = scaled_sigmoid(position) * profile.tp_weight / max_tp
            window_best[w] = max(window_best.get(w, -math.inf), score)
            in_window += 1
        else:
            # Before any window: the lowest score; after one: by distance past its end.
            unweighted = -1.0 if prev_right is None else scaled_sigmoid(abs(prev_right - i) / (prev_width - 1.0))
            fp_total += unweighted * profile.fp_weight
            fp_count += 1
    misses = len(bounds) - len(window_best)
    raw = sum(window_best.values()) + fp_total - misses * profile.fn_weight
    return raw, len(window_best), fp_count, misses, in_window


def nab_score(
    timestamps: Sequence[pd.Timestamp] | pd.Series,
    detected: Sequence[bool],
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    profile: NabProfile = STANDARD,
) -> NabResult:
    """Score binary detections (one flag per row) against labelled windows with NAB's rules."""
    ts = [pd.Timestamp(t) for t in timestamps]
    if len(ts) != len(detected):
        raise ValueError(f"{len(ts)} timestamps but {len(detected)} detection flags")
    wins = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]
    probation = probationary_length(len(ts))
    raw, tp, fp, fn, in_window = _raw_score(ts, list(map(bool, detected)), wins, profile, probation)
    null = -float(len(wins)) * profile.fn_weight
    index = {t: i for i, t in enumerate(ts)}
    perfect_flags = [False] * len(ts)
    for a, _ in wins:
        perfect_flags[index[a]] = True
    perfect = _raw_score(ts, perfect_flags, wins, profile, probation)[0]
    normalized = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    scored = in_window + fp
    return NabResult(
        raw=raw,
        null=null,
        perfect=perfect,
        normalized=normalized,
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        detections=scored,
        window_precision=in_window / scored if scored else 0.0,
        window_recall=tp / len(wins) if wins else 0.0,
    )


def score_detector_on_nab(
    csv_path: str | Path, windows_path: str | Path, config: DetectorConfig | None = None
) -> NabResult:
    """Run the streaming detector over a NAB series (one sensor, in order) and score its alerts."""
    frame = pd.read_csv(csv_path, parse_dates=["timestamp"])
    labels = json.loads(Path(windows_path).read_text())
    name = Path(csv_path).name
    if name not in labels:
        raise ValueError(f"{windows_path} has no windows for {name}")
    detectors = SensorDetectors(config)
    flags = [detectors.observe("nab", str(i), i, float(v)) is not None for i, v in enumerate(frame["value"].to_numpy())]
    return nab_score(frame["timestamp"], flags, labels[name])
