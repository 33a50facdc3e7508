"""Serving benchmark: the Slipway predictor against a naive KServe model, MLServer's sklearn runtime and a trivial
ASGI endpoint, on the same churn pipeline and the same payloads (1 and 32 rows), on loopback.

    .venv/bin/python benchmarks/bench_serving.py [--duration 4] [--rounds 3] [--concurrency 1 8 16] [--rows 1 32]

MLServer runs from its own venv (`benchmarks/mlserver/setup.sh`); without it that peer is reported as missing.
All servers start first; each configuration then measures the targets back to back in alternating order
(the median of `--rounds`), so background load affects peers alike. The load generator (benchmarks/loadgen.py) is
a separate process on keep-alive connections.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.netutil import free_port  # noqa: E402
from slipway.data.churn_schema import CATEGORICAL_FEATURES, FEATURE_COLUMNS, feature_schema  # noqa: E402

TELCO = ROOT.parent / "shared" / "datasets" / "telco-churn" / "Telco-Customer-Churn.csv"
MLSERVER = ROOT / "benchmarks" / "mlserver" / ".venv" / "bin" / "mlserver"
PY = sys.executable


def churn_frame() -> pd.DataFrame:
    if TELCO.exists():
        df = pd.read_csv(TELCO)
        df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce").fillna(0.0)
        return df
    from slipway.data.churn import generate_churn  # type: ignore[attr-defined]

    return generate_churn(3000, seed=42)


def build_model(work: Path, df: pd.DataFrame) -> Path:
    """Train the churn pipeline (logistic regression), register it and download the verified version folder."""
    from slipway.registry import ModelRegistry, sha256_dataframe
    from slipway.storage import LocalArtifactStore
    from slipway.training.churn import build_pipeline, save_model, split_xy

    x, y = split_xy(df)
    pipe = build_pipeline("logistic_regression").fit(x, y)
    path = save_model(pipe, work / "train" / "model.joblib")
    registry = ModelRegistry(LocalArtifactStore(work / "registry"))
    registry.register(
        "churn",
        path,
        metrics={},
        params={"algorithm": "logistic_regression"},
        training_data_sha256=sha256_dataframe(df),
        feature_schema=feature_schema(),
    )
    return registry.download("churn", None, work / "model")


def payloads(df: pd.DataFrame, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same rows as a v1 body and as a v2 body (one column per feature, MLServer's pandas codec hints)."""
    rows = json.loads(df[FEATURE_COLUMNS].sample(n, random_state=7).to_json(orient="records"))
    v1 = {"instances": rows}
    inputs = []
    for col in FEATURE_COLUMNS:
        data = [r[col] for r in rows]
        if col in CATEGORICAL_FEATURES:
            inputs.append(
                {"name": col, "datatype": "BYTES", "shape": [n], "data": data, "parameters": {"content_type": "str"}}
            )
        else:
            is_int = all(isinstance(v, int) for v in data)
            inputs.append({"name": col, "datatype": "INT64" if is_int else "FP64", "shape": [n], "data": data})
    v2 = {"id": "bench", "parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    return v1, v2


class Server:
    def __init__(
        self, name: str, cmd: list[str], ready_url: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ):
        self.name, self.cmd, self.ready_url = name, cmd, ready_url
        # One BLAS/OpenMP thread for every server (the same for all peers): a request is too small to split.
        threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        self.env = {
            **os.environ,
            **threads,
            "KSERVE_LOGLEVEL": "WARNING",
            "SLIPWAY_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115 - kept for post-mortems

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log.name}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after 180 s; log: {self.log.name}")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # MLServer can hang on SIGTERM after load
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def load(url: str, body: Path, concurrency: int, duration: float) -> dict[str, Any]:
    cmd = [PY, str(ROOT / "benchmarks" / "loadgen.py"), "--url", url, "--body", str(body)]
    cmd += ["-c", str(concurrency), "-d", str(duration), "--warmup", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def check_answers(url: str, body: dict[str, Any], expected: np.ndarray, extract: Any) -> float:
    r = httpx.post(url, json=body, timeout=30)
    r.raise_for_status()
    return float(np.max(np.abs(np.asarray(extract(r.json()), dtype=float) - expected)))


def mlserver_dir(work: Path, model_dir: Path, port: int) -> Path:
    repo = work / "mlserver"
    (repo / "churn").mkdir(parents=True, exist_ok=True)
    (repo / "churn" / "model.joblib").write_bytes((model_dir / "model.joblib").read_bytes())
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(), "host": "127.0.0.1"}
    (repo / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "churn",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    (repo / "churn" / "model-settings.json").write_text(json.dumps(model_settings))
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (after 1 s warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target and configuration")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--only", nargs="*", default=None, help="subset of targets to run")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench_serving.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    df = churn_frame()
    model_dir = build_model(work, df)
    import joblib

    pipe = joblib.load(model_dir / "model.joblib")
    bodies: dict[tuple[str, int], Path] = {}
    expected: dict[int, np.ndarray] = {}
    for n in args.rows:
        v1, v2 = payloads(df, n)
        for proto, body in (("v1", v1), ("v2", v2)):
            path = work / f"{proto}-{n}.json"
            path.write_text(json.dumps(body))
            bodies[(proto, n)] = path
        expected[n] = pipe.predict_proba(pd.DataFrame(v1["instances"]))[:, 1]

    ports = {k: free_port() for k in ("slipway", "slipway2", "naive", "mlserver", "asgi")}
    base = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    serve = [PY, "-m", "slipway.serving.churn_model", "--model-dir", str(model_dir), "--name", "churn"]
    targets: list[tuple[str, Server | None, str, list[tuple[str, str, Any]]]] = [
        (
            "slipway",
            Server(
                "slipway",
                [*serve, "--http-port", str(ports["slipway"])],
                f"{base['slipway']}/v2/health/ready",
                cwd=ROOT,
            ),
            "Slipway predictor (KServe ModelServer, ONNX path, 1 worker)",
            [
                (
                    "v1",
                    f"{base['slipway']}/v1/models/churn:predict",
                    lambda j: [p["churn_probability"] for p in j["predictions"]],
                ),
                ("v2", f"{base['slipway']}/v2/models/churn/infer", lambda j: j["outputs"][0]["data"]),
            ],
        ),
        (
            "slipway-2w",
            Server(
                "slipway-2w",
                [*serve, "--http-port", str(ports["slipway2"]), "--workers", "2"],
                f"{base['slipway2']}/v2/health/ready",
                cwd=ROOT,
            ),
            "Slipway predictor, --workers 2",
            [
                (
                    "v1",
                    f"{base['slipway2']}/v1/models/churn:predict",
                    lambda j: [p["churn_probability"] for p in j["predictions"]],
                )
            ],
        ),
        (
            "naive",
            Server(
                "naive",
                [
                    PY,
                    str(ROOT / "benchmarks" / "peers.py"),
                    "naive",
                    "--model-dir",
                    str(model_dir),
                    "--port",
                    str(ports["naive"]),
                ],
                f"{base['naive']}/v2/health/ready",
                cwd=ROOT,
            ),
            "naive KServe custom model (DataFrame + predict_proba)",
            [("v1", f"{base['naive']}/v1/models/churn:predict", lambda j: j["predictions"])],
        ),
        (
            "mlserver",
            Server(
                "mlserver",
                [str(MLSERVER), "start", str(mlserver_dir(work, model_dir, ports["mlserver"]))],
                f"{base['mlserver']}/v2/models/churn/ready",
            )
            if MLSERVER.exists()
            else None,
            "MLServer 1.7.1 sklearn runtime",
            [
                (
                    "v2",
                    f"{base['mlserver']}/v2/models/churn/infer",
                    lambda j: [r[1] for r in np.reshape(j["outputs"][0]["data"], (-1, 2))],
                )
            ],
        ),
        (
            "asgi",
            Server(
                "asgi",
                [PY, str(ROOT / "benchmarks" / "peers.py"), "asgi", "--port", str(ports["asgi"])],
                f"{base['asgi']}/",
                cwd=ROOT,
            ),
            "trivial ASGI endpoint (uvicorn, constant answer): ceiling",
            [("v1", f"{base['asgi']}/", None)],
        ),
    ]
    results: list[dict[str, Any]] = []
    chosen = [t for t in targets if not args.only or t[0] in args.only]
    for key, server, label, _ in chosen:
        if server is None:
            print(f"{key}: not installed (run benchmarks/mlserver/setup.sh)", flush=True)
            results.append({"target": key, "label": label, "missing": True})
    running = [t for t in chosen if t[1] is not None]
    with contextlib.ExitStack() as stack:
        # Every server is up (and idle) at once; each configuration measures the targets back to back, in
        # `--rounds` rounds of alternating order, so a change in background load hits every target alike.
        for _, server, _, _ in running:
            assert server is not None
            stack.enter_context(server)
        cases = [(key, label, proto, url, extract) for key, _, label, eps in running for proto, url, extract in eps]
        diffs = {
            (key, proto, n): (
                check_answers(url, json.loads(bodies[(proto, n)].read_text()), expected[n], extract)
                if extract
                else None
            )
            for key, _, proto, url, extract in cases
            for n in args.rows
        }
        for n in args.rows:
            for c in args.concurrency:
                samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
                for round_ in range(args.rounds):
                    order = cases if round_ % 2 == 0 else cases[::-1]
                    for key, _label, proto, url, _ in order:
                        samples.setdefault((key, proto), []).append(load(url, bodies[(proto, n)], c, args.duration))
                for key, label, proto, _, _ in cases:
                    runs = samples[(key, proto)]
                    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median round by throughput
                    r = dict(best, target=key, label=label, protocol=proto, rows=n, rounds=[x["rps"] for x in runs])
                    r["max_abs_diff"] = diffs[(key, proto, n)]
                    r["errors"] = sum(x["errors"] for x in runs)
                    results.append(r)
                    print(
                        f"{key:11s} {proto} rows={n:<3d} c={c:<3d} rps={r['rps']:8.1f} p50={r['p50_ms']:7.2f} "
                        f"p99={r['p99_ms']:7.2f} ms errors={r['errors']} rounds={r['rounds']} diff={r['max_abs_diff']}",
                        flush=True,
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
