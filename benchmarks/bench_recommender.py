"""Recommender latency and ranking quality.

Ranking: precision/recall/nDCG@K of item-item cosine and truncated SVD against the popularity baseline on the
synthetic interactions (leave-last-2-out). Latency: a real KServe ModelServer on loopback answering v1 requests
for one user and K = 10, sequentially (c = 1), measured by the client; peers in the same run: the in-process
`Recommender.recommend` call, and the same server reached through the Slipway traffic router
(`slipway rollout router`, its own process).

    .venv/bin/python benchmarks/bench_recommender.py --users 5000 --items 2000 --requests 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.netutil import free_port  # noqa: E402


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


@contextmanager
def _router_process(backend: str, env: dict[str, str]) -> Iterator[str]:
    """`slipway rollout router` in its own process, as it runs in production (not sharing the client's GIL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "slipway.cli", "rollout", "router", "--variant", f"primary={backend}=100"]
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/router/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("router process did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _time_http(url: str, users: list[str], k: int) -> dict[str, float]:
    lat: list[float] = []
    with httpx.Client(timeout=10) as client:
        for user in users[:100]:  # warm-up
            client.post(url, json={"instances": [{"user_id": user, "k": k}]})
        for user in users:
            body = {"instances": [{"user_id": user, "k": k}]}
            start = time.perf_counter()
            r = client.post(url, json=body)
            lat.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
    return _percentiles(lat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from slipway.recommender.data import generate_interactions, split_last_n
    from slipway.recommender.metrics import evaluate_ranking
    from slipway.recommender.model import train_recommender
    from slipway.recommender.training import register_recommender
    from slipway.registry import ModelRegistry
    from slipway.rollout.local import ServerSpec, running_servers
    from slipway.storage import LocalArtifactStore

    frame = generate_interactions(args.users, args.items, seed=args.seed)
    train, test = split_last_n(frame, 2)
    users = sorted(test["user_id"].unique())
    out: dict[str, Any] = {"interactions": len(frame), "users": args.users, "items": args.items, "k": args.k}
    ranking: dict[str, Any] = {}
    for algorithm in ("popularity", "item_knn", "svd"):
        start = time.perf_counter()
        model = train_recommender(train, algorithm, seed=args.seed)
        fit_s = time.perf_counter() - start
        m = evaluate_ranking(model.recommend_users(users, args.k), test, args.k, model.n_items)
        ranking[algorithm] = {**{k: round(v, 4) for k, v in m.as_flat().items()}, "fit_s": round(fit_s, 2)}
    base = ranking["popularity"][f"ndcg_at_{args.k}"]
    for algorithm in ("item_knn", "svd"):
        ranking[algorithm]["ndcg_ratio_vs_popularity"] = round(ranking[algorithm][f"ndcg_at_{args.k}"] / base, 2)
    out["ranking"] = ranking

    served = train_recommender(frame, "item_knn", seed=args.seed)
    sample = [str(u) for u in np.random.default_rng(args.seed).choice(list(served.user_index), size=args.requests)]
    lat: list[float] = []
    for user in sample:
        start = time.perf_counter()
        served.recommend(user, k=args.k)
        lat.append(time.perf_counter() - start)
    out["in_process"] = _percentiles(lat)

    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(LocalArtifactStore(Path(tmp) / "artifacts"))
        path = served.save(Path(tmp) / "model.joblib")
        version = register_recommender(registry, "recommender", path, {}, {"algorithm": "item_knn"}, frame)
        model_dir = registry.download("recommender", version, Path(tmp) / "serve")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("SLIPWAY_SERVING_TOKEN", None)
        spec = ServerSpec("slipway.serving.recommender_model", model_dir, "recommender", free_port())
        with running_servers([spec], env=env, timeout=180) as (url,):
            predict = f"{url}/v1/models/recommender:predict"
            out["kserve_direct"] = _time_http(predict, sample, args.k)
            with _router_process(url, env) as rbase:
                out["kserve_via_router"] = _time_http(f"{rbase}/v1/models/recommender:predict", sample, args.k)
    out["p99_ratio_server_vs_in_process"] = round(out["kserve_direct"]["p99_ms"] / out["in_process"]["p99_ms"], 1)
    out["p99_ratio_router_vs_direct"] = round(out["kserve_via_router"]["p99_ms"] / out["kserve_direct"]["p99_ms"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
