"""Drift check at scale: the profile-based check against a plain Evidently DataDriftPreset on the full data.

    .venv/bin/python benchmarks/bench_drift.py --rows 1000000 --cols 100            # both, full size
    .venv/bin/python benchmarks/bench_drift.py --rows 1000000 --peer-rows 100000    # peer on a smaller size

Data: `cols` columns (70 % numerical of mixed shapes, 30 % categorical strings), a reference and a current frame of
`rows` rows each, 10 % of the columns shifted in the current frame. Timed, in one process:
- profile: building the reference profile (done once, at training time);
- fast check: `fast_drift` on the full current frame (every row, every column);
- report: Evidently on a stratified 20k-row sample of the current frame against a 5k-row reference sample, for
  the 20 columns that drifted or came closest (the HTML/JSON report the check stores);
- peer: `run_drift_report` (Evidently DataDriftPreset) on the full reference and current frames.
Per-column verdicts of the fast check and the peer are compared when the peer runs on the full size. Wall and
process CPU seconds are both recorded: on a shared machine the CPU seconds are the steadier comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def make_frames(rows: int, cols: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    n_num = round(cols * 0.7)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    shifted: list[str] = []
    shift_every = 10
    for i in range(cols):
        name = f"num_{i:03d}" if i < n_num else f"cat_{i:03d}"
        shift = i % shift_every == 0
        if i < n_num:
            kind = i % 3
            if kind == 0:
                draw = lambda n, s: rng.normal(50 + 10 * s, 10, n)  # noqa: E731
            elif kind == 1:
                draw = lambda n, s: rng.lognormal(3 + 0.5 * s, 0.6, n)  # noqa: E731
            else:
                draw = lambda n, s: rng.integers(0, 100 + 40 * s, n).astype(np.float64)  # noqa: E731
            ref[name] = draw(rows, 0)
            cur[name] = draw(rows, 1 if shift else 0)
        else:
            k = 5 + i % 15
            cats = np.array([f"v{j}" for j in range(k)], dtype=object)
            p = np.linspace(1, 2, k)
            p /= p.sum()
            ref[name] = rng.choice(cats, size=rows, p=p)
            cur[name] = rng.choice(cats, size=rows, p=p[::-1] if shift else p)
        if shift:
            shifted.append(name)
    return pd.DataFrame(ref), pd.DataFrame(cur), shifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=100)
    parser.add_argument("--peer-rows", type=int, default=-1, help="rows for the Evidently peer; -1: --rows, 0: skip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    from slipway.monitoring.drift import run_drift_report
    from slipway.monitoring.fast_drift import fast_drift, report_columns
    from slipway.monitoring.profile import ReferenceProfile, build_profile, stratified_sample

    result: dict[str, Any] = {
        "rows": args.rows,
        "cols": args.cols,
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
    }
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:  # import and warm Evidently up once, outside every timing
        tiny = pd.DataFrame({"x": np.arange(50.0), "c": ["a", "b"] * 25})
        run_drift_report(tiny, tiny, work)
    result["evidently_warmup_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    ref, cur, shifted = make_frames(args.rows, args.cols, args.seed)
    result["generate_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    profile = build_profile(ref)
    profile = ReferenceProfile.model_validate_json(profile.model_dump_json())  # as stored in the registry
    result["profile_s"] = round(time.perf_counter() - t, 2)
    result["profile_json_bytes"] = len(profile.model_dump_json())

    t, c = time.perf_counter(), time.process_time()
    fast = fast_drift(profile, cur)
    result["fast_check_s"] = round(time.perf_counter() - t, 2)
    result["fast_check_cpu_s"] = round(time.process_time() - c, 2)
    result["fast_drifted"] = len(fast.drifted_columns)
    result["fast_exactly_shifted"] = fast.drifted_columns == shifted

    with tempfile.TemporaryDirectory() as work:
        t, c = time.perf_counter(), time.process_time()
        ref_sample = stratified_sample(ref, 5000, seed=1)
        cur_sample = stratified_sample(cur, 20_000, seed=1)
        shown = report_columns(fast, 20)
        run_drift_report(ref_sample, cur_sample, Path(work) / "sample", columns=shown)
        result["sample_report_s"] = round(time.perf_counter() - t, 2)
        result["sample_report_cpu_s"] = round(time.process_time() - c, 2)
    result["check_total_s"] = round(result["fast_check_s"] + result["sample_report_s"], 2)
    result["check_total_cpu_s"] = round(result["fast_check_cpu_s"] + result["sample_report_cpu_s"], 2)
    print(json.dumps(result), flush=True)

    peer_rows = args.rows if args.peer_rows < 0 else args.peer_rows
    if peer_rows:
        with tempfile.TemporaryDirectory() as work:
            t, c = time.perf_counter(), time.process_time()
            peer = run_drift_report(ref.iloc[:peer_rows], cur.iloc[:peer_rows], Path(work) / "peer")
            result["peer_rows"] = peer_rows
            result["peer_evidently_s"] = round(time.perf_counter() - t, 2)
            result["peer_evidently_cpu_s"] = round(time.process_time() - c, 2)
        if peer_rows == args.rows:
            agree = sum(peer.columns[c]["drifted"] == fast.columns[c]["drifted"] for c in fast.columns)
            result["verdict_agreement"] = f"{agree}/{len(fast.columns)}"
            result["max_abs_score_diff"] = max(
                abs(peer.columns[c]["score"] - fast.columns[c]["score"]) for c in fast.columns
            )
        result["ratio_peer_over_check"] = round(result["peer_evidently_s"] / result["check_total_s"], 1)
        result["cpu_ratio_peer_over_check"] = round(result["peer_evidently_cpu_s"] / result["check_total_cpu_s"], 1)
    print(json.dumps(result), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
