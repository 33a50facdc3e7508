"""KServe custom predictor for the churn model: schema-validated v1 and v2 inference, optional bearer auth.

Run it as `python -m slipway.serving.churn_model --model-dir /mnt/models --name churn --http-port 8080`.
Every input that does not match the model's feature schema is answered with 400 (`kserve.errors.InvalidInput`),
never 500.
"""

from __future__ import annotations

import argparse
import gc
import hmac
import json
import logging
import math
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# `import kserve` parses sys.argv at import time; give it a clean argv so our own flags do not leak into it.
_saved_argv = sys.argv
sys.argv = sys.argv[:1]
try:
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _saved_argv

logger = logging.getLogger(__name__)

OUTPUT_NAME = "churn_probability"
MAX_ERRORS_REPORTED = 10
# Paths reachable without a bearer token (liveness / readiness probes).
_OPEN_PATHS = {"/", "/v2", "/v2/health/live", "/v2/health/ready"}


class ChurnModel(kserve.Model):  # type: ignore[misc]
    """A verified sklearn churn pipeline behind KServe's v1 and v2 protocols."""

    def __init__(self, name: str, model_dir: str | Path) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.model: Any = None
        self.meta: Any = None
        self.features: list[dict[str, Any]] = []
        self.feature_names: list[str] = []
        self._positive_index = 1
        self.ready = False

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def load(self) -> bool:
        from slipway.registry.model_registry import load_verified_model  # lazy: the registry pulls in pydantic etc.

        model, meta = load_verified_model(self.model_dir)
        schema = getattr(meta, "feature_schema", None) or {}
        features = list(schema.get("features", []))
        if not features:
            from slipway.errors import ConfigError

            raise ConfigError(f"{self.model_dir}/model.json has no feature_schema.features; re-register the model")
        self.model, self.meta = model, meta
        self.features = features
        self.feature_names = [f["name"] for f in features]
        self._positive_index = _positive_class_index(model)
        self.ready = True
        gc.freeze()  # long-lived model objects out of the GC's young generations: fewer latency spikes
        logger.info("loaded %s v%s from %s", getattr(meta, "name", "?"), getattr(meta, "version", "?"), self.model_dir)
        return self.ready

    # -- validation ------------------------------------------------------------------------------------------------
    def validate_rows(self, rows: Sequence[Any]) -> pd.DataFrame:
        """Check rows (dicts keyed by feature name) against the schema; raise InvalidInput listing the problems."""
        if not isinstance(rows, (list, tuple)) or len(rows) == 0:
            raise InvalidInput("no instances: send at least one instance with the model's feature fields")
        errors: list[str] = []
        clean: list[dict[str, Any]] = []
        expected = set(self.feature_names)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.append(f"instance {i}: expected an object of feature fields, got {type(row).__name__}")
                continue
            missing = [n for n in self.feature_names if n not in row]
            extra = sorted(str(k) for k in row if k not in expected)
            if missing:
                errors.append(f"instance {i}: missing field(s) {missing}")
            if extra:
                errors.append(f"instance {i}: unknown field(s) {extra}")
            out: dict[str, Any] = {}
            for spec in self.features:
                name = spec["name"]
                if name not in row:
                    continue
                value, problem = _check_value(spec, row[name])
                if problem:
                    errors.append(f"instance {i}: field '{name}' {problem}")
                out[name] = value
            clean.append(out)
        if errors:
            more = f" (and {len(errors) - MAX_ERRORS_REPORTED} more)" if len(errors) > MAX_ERRORS_REPORTED else ""
            raise InvalidInput("; ".join(errors[:MAX_ERRORS_REPORTED]) + more)
        return pd.DataFrame(clean, columns=self.feature_names)

    def _rows_from_v2(self, request: InferRequest) -> list[dict[str, Any]]:
        inputs = list(request.inputs or [])
        if not inputs:
            raise InvalidInput("v2 request has no inputs")
        if len(inputs) == 1 and inputs[0].name not in self.feature_names:
            # One input holding whole rows: shape [n, n_features] in schema order, or [n] JSON objects.
            values = _input_values(inputs[0])
            rows: list[dict[str, Any]] = []
            for i, item in enumerate(values):
                if isinstance(item, (str, bytes)):
                    try:
                        item = json.loads(item)
                    except ValueError as exc:
                        raise InvalidInput(f"input '{inputs[0].name}' element {i} is not a JSON object") from exc
                if isinstance(item, dict):
                    rows.append(item)
                elif isinstance(item, list):
                    if len(item) != len(self.feature_names):
                        raise InvalidInput(
                            f"input '{inputs[0].name}' row {i} has {len(item)} values, expected "
                            f"{len(self.feature_names)} in order {self.feature_names}"
                        )
                    rows.append(dict(zip(self.feature_names, item, strict=True)))
                else:
                    raise InvalidInput(f"input '{inputs[0].name}' row {i} must be a list of feature values")
            return rows
        # Columnar: one input per feature column, each of shape [n] (or [n, 1]).
        columns: dict[str, list[Any]] = {}
        for inp in inputs:
            if inp.name in columns:
                raise InvalidInput(f"input '{inp.name}' given twice")
            columns[inp.name] = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in _input_values(inp)]
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise InvalidInput(f"inputs have different lengths {sorted(lengths)}; every column needs one value a row")
        n = lengths.pop()
        return [{name: col[i] for name, col in columns.items()} for i in range(n)]

    # -- inference -------------------------------------------------------------------------------------------------
    def _probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        proba = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
        return proba[:, self._positive_index]

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            frame = self.validate_rows(self._rows_from_v2(payload))
            p = self._probabilities(frame)
            output = InferOutput(name=OUTPUT_NAME, shape=[len(p)], datatype="FP64", data=p.tolist())
            return InferResponse(
                response_id=str(payload.id) if payload.id else str(uuid.uuid4()),
                model_name=self.name,
                model_version=str(getattr(self.meta, "version", "")) or None,
                infer_outputs=[output],
            )
        if not isinstance(payload, dict):
            raise InvalidInput('body must be a JSON object like {"instances": [{feature: value, ...}]}')
        if "instances" not in payload:
            raise InvalidInput('body has no "instances": send {"instances": [{feature: value, ...}]}')
        frame = self.validate_rows(payload["instances"])
        p = self._probabilities(frame)
        return {"predictions": [{"churn_probability": float(x), "churn": "Yes" if x >= 0.5 else "No"} for x in p]}


def _positive_class_index(model: Any) -> int:
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    for positive in ("Yes", 1, True, "1"):
        if positive in classes:
            return classes.index(positive)
    return 1


def _input_values(inp: InferInput) -> list[Any]:
    data = inp.data
    if data is None or isinstance(data, np.ndarray) or not isinstance(data, list):
        try:
            data = inp.as_numpy().tolist()
        except Exception as exc:  # undecodable tensor: the client's fault
            raise InvalidInput(f"input '{inp.name}' could not be decoded: {exc}") from exc
    shape = list(inp.shape or [])
    # REST clients may send flat data with a 2-D shape: restore the rows.
    if len(shape) == 2 and data and not isinstance(data[0], list) and shape[0] * shape[1] == len(data):
        data = [data[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
    return [v.decode() if isinstance(v, bytes) else v for v in data]


def _check_value(spec: dict[str, Any], value: Any) -> tuple[Any, str | None]:
    kind = spec.get("type")
    if kind == "string":
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if not isinstance(value, str):
            return value, f"must be a string, got {type(value).__name__} {value!r}"
        allowed = spec.get("allowed")
        if allowed is not None and value not in allowed:
            return value, f"has unknown category {value!r}; allowed: {allowed}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"must be a {kind}, got {type(value).__name__} {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return value, f"must be a finite {kind}, got {value!r}"
    if kind == "integer" and isinstance(value, float):
        if not value.is_integer():
            return value, f"must be an integer, got {value!r}"
        value = int(value)
    lo, hi = spec.get("min"), spec.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return value, f"is {value!r}, outside the allowed range [{lo}, {hi}]"
    return value, None


# -- auth ----------------------------------------------------------------------------------------------------------
class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 unless `Authorization: Bearer <token>`; health probes stay open."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    @staticmethod
    def _is_open(path: str) -> bool:
        path = path.rstrip("/") or "/"
        if path in _OPEN_PATHS:
            return True
        # per-model readiness: GET /v1/models/<name> and /v2/models/<name>/ready
        parts = path.strip("/").split("/")
        return (parts[:2] == ["v1", "models"] and len(parts) == 3 and ":" not in parts[2]) or (
            parts[:2] == ["v2", "models"] and parts[-1] == "ready"
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._is_open(scope.get("path", "/")):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "missing or invalid bearer token: send 'Authorization: Bearer <token>'"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": body})


# -- servers -------------------------------------------------------------------------------------------------------
def create_app(model: kserve.Model, bearer_token: str | None = None) -> Any:
    """An in-process FastAPI app serving `model` (for tests and embedding), built as ModelServer builds its own."""
    import kserve.model_server as ms
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    repo = ModelRepository()
    repo.update(model)
    dataplane = DataPlane(model_registry=repo)
    # RESTServer.create_application decorates the module-level `kserve.model_server:app`: give it a fresh one.
    app = FastAPI(title="Slipway churn model", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse)
    ms.app = app
    RESTServer(
        "kserve.model_server:app", dataplane, ModelRepositoryExtension(model_registry=repo), 0
    ).create_application()
    if bearer_token:
        app.add_middleware(BearerAuthMiddleware, token=bearer_token)
    return app


def build_model_server(http_port: int = 8080, bearer_token: str | None = None, workers: int = 1) -> Any:
    """The real `kserve.ModelServer` (REST only); with a token, non-health requests need `Bearer <token>`."""
    import kserve.model_server as ms

    if bearer_token:
        ms.app.add_middleware(BearerAuthMiddleware, token=bearer_token)
    return kserve.ModelServer(http_port=http_port, enable_grpc=False, workers=workers)


def serve(model_dir: str | Path, name: str = "churn", http_port: int = 8080, bearer_token: str | None = None) -> None:
    """Load the model (verified) and serve it until SIGTERM."""
    model = ChurnModel(name, model_dir)
    model.load()
    build_model_server(http_port=http_port, bearer_token=bearer_token).start([model])


def main(argv: Sequence[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(description="Serve a Slipway churn model with KServe.")
    parser.add_argument("--model-dir", required=True, help="folder with model.joblib and model.json")
    parser.add_argument("--name", default="churn")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument(
        "--bearer-token-env",
        default="SLIPWAY_SERVING_TOKEN",
        help="environment variable holding the bearer token; unset or empty disables auth",
    )
    args = parser.parse_args(argv)
    serve(args.model_dir, args.name, args.http_port, os.environ.get(args.bearer_token_env) or None)


if __name__ == "__main__":
    main()
