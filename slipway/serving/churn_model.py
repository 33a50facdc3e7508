"""KServe predictor for sklearn churn pipelines: schema-validated v1 and v2 inference on a compiled fast path.

Run it as `python -m slipway.serving.churn_model --model-dir /mnt/models --name churn --http-port 8080`.

- Every input that does not match the model's feature schema is answered with 400 (`kserve.errors.InvalidInput`)
  and a message naming the instance and field, never 500.
- Predictions come from `slipway.serving.fast.compile_predictor` (ONNX or a numpy replay of the pipeline, checked
  against sklearn within 1e-6 at load; plain sklearn otherwise).
- A row carrying only `customer_id` is enriched from the Feast online store when a feature repo is configured.
- `POST /v2/repository/models/<name>/load` reloads the model folder (e.g. after a new version was downloaded into
  it) without dropping requests: the new version is built off the event loop and swapped in atomically.
- Metrics (`slipway_*`) are served on `/metrics`; scored rows go to a `PayloadLogger` when one is configured.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# `import kserve` parses sys.argv at import time; give it a clean argv so our own flags do not leak into it.
_saved_argv = sys.argv
sys.argv = sys.argv[:1]
try:
    import kserve
    from kserve.errors import InvalidInput, ModelNotFound
    from kserve.model_repository import ModelRepository
    from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _saved_argv

from slipway.serving import metrics as serving_metrics  # noqa: E402 - after kserve's argv guard

logger = logging.getLogger("slipway.serving.churn_model")  # also when run as __main__

OUTPUT_NAME = "churn_probability"
MAX_ERRORS_REPORTED = 10
# Paths reachable without a bearer token: liveness / readiness probes and the Prometheus scrape.
_OPEN_PATHS = {"/", "/v2", "/v2/health/live", "/v2/health/ready", "/metrics"}
ONNX_FILE = "model.onnx"


@dataclass
class LoadedVersion:
    """Everything one model version needs to answer requests; replaced as a whole on reload."""

    meta: Any
    predictor: Any
    features: list[dict[str, Any]]
    feature_names: list[str]
    version: str
    payload_logger: Any = None
    threshold: float = 0.5  # the cut chosen at training time (registry param `decision_threshold`)
    name_set: frozenset[str] = field(default=frozenset())
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)


class ChurnModel(kserve.Model):  # type: ignore[misc]
    """A verified sklearn churn pipeline behind KServe's v1 and v2 protocols."""

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        variant: str | None = None,
        payload_log: Any = None,
        enricher: Any = None,
        convert_onnx: bool = True,
    ) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.variant = variant
        self.payload_log = payload_log
        self.enricher = enricher
        self.convert_onnx = convert_onnx
        self.current: LoadedVersion | None = None
        self.ready = False

    # -- lifecycle -------------------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.current.version if self.current else ""

    @property
    def predictor_kind(self) -> str:
        return str(self.current.predictor.kind) if self.current else ""

    def _load_version(self) -> LoadedVersion:
        from slipway.errors import ConfigError, IntegrityError
        from slipway.registry.model_registry import load_verified_model
        from slipway.serving.fast import compile_predictor
        from slipway.storage import sha256_file

        model, meta = load_verified_model(self.model_dir)
        features = list((meta.feature_schema or {}).get("features", []))
        if not features:
            raise ConfigError(f"{self.model_dir}/model.json has no feature_schema.features; re-register the model")
        onnx_path: Path | None = None
        expected = meta.extra_files.get(ONNX_FILE)
        if expected is not None:
            candidate = self.model_dir / ONNX_FILE
            if not candidate.is_file() or sha256_file(candidate) != expected:
                raise IntegrityError(
                    f"{candidate} is missing or does not match the sha256 recorded for {meta.name} v{meta.version}; "
                    "download the version again"
                )
            onnx_path = candidate
        elif (self.model_dir / ONNX_FILE).exists():
            logger.warning(
                "ignoring %s: v%s does not record it (stale file?)", self.model_dir / ONNX_FILE, meta.version
            )
        predictor = compile_predictor(model, features, onnx_path=onnx_path, convert_onnx=self.convert_onnx)
        names = [f["name"] for f in features]
        payload_logger = None
        if self.payload_log is not None:
            from slipway.serving.payload_log import PayloadLogger

            payload_logger = PayloadLogger(self.payload_log, self.name, meta.version, self.variant)
        return LoadedVersion(
            meta=meta,
            predictor=predictor,
            features=features,
            feature_names=names,
            version=str(meta.version),
            payload_logger=payload_logger,
            threshold=_decision_threshold(meta.params),
            name_set=frozenset(names),
            allowed={f["name"]: frozenset(f["allowed"]) for f in features if f.get("allowed") is not None},
        )

    def load(self) -> bool:
        self._swap(self._load_version())
        self.ready = True
        return self.ready

    async def reload(self) -> str:
        """Load the model folder again off the event loop, then swap it in; returns the version now served."""
        new = await asyncio.to_thread(self._load_version)
        old = self._swap(new)
        if old is not None and old.payload_logger is not None:
            await asyncio.to_thread(old.payload_logger.close)
        return new.version

    def _swap(self, new: LoadedVersion) -> LoadedVersion | None:
        old, self.current = self.current, new  # one reference assignment: a request sees either version whole
        serving_metrics.set_model_info(self.name, new.version, old.version if old else None)
        gc.freeze()  # long-lived model objects out of the GC's young generations: fewer latency spikes
        logger.info("serving %s v%s (%s path) from %s", self.name, new.version, new.predictor.kind, self.model_dir)
        return old

    def stop(self) -> None:
        if self.current is not None and self.current.payload_logger is not None:
            self.current.payload_logger.close()

    # -- validation ------------------------------------------------------------------------------------------------
    def validate_rows(
        self, rows: Sequence[Any], current: LoadedVersion | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
        """Check rows (dicts keyed by feature name) against the schema; raise InvalidInput listing the problems.

        Returns the columns as numpy arrays (object for strings, float64 for numbers) and as Python lists.
        """
        cur = current or self.current
        assert cur is not None, "model not loaded"
        return self.validate_columns(self._columns_from_rows(rows, cur), cur)

    @staticmethod
    def _columns_from_rows(rows: Sequence[Any], cur: LoadedVersion) -> dict[str, list[Any]]:
        if not isinstance(rows, (list, tuple)) or len(rows) == 0:
            raise InvalidInput("no instances: send at least one instance with the model's feature fields")
        names = cur.feature_names
        if all(type(row) is dict and row.keys() == cur.name_set for row in rows):  # the common case, in C loops
            return {name: [row[name] for row in rows] for name in names}
        errors: list[str] = []
        columns: dict[str, list[Any]] = {n: [] for n in names}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.append(f"instance {i}: expected an object of feature fields, got {type(row).__name__}")
                continue
            missing = [n for n in names if n not in row]
            extra = sorted(str(k) for k in row if k not in cur.name_set)
            if missing:
                errors.append(f"instance {i}: missing field(s) {missing}")
            if extra:
                errors.append(f"instance {i}: unknown field(s) {extra}")
            if not missing:
                for name in names:
                    columns[name].append(row[name])
        _raise(errors)
        return columns

    def validate_columns(
        self, columns: dict[str, list[Any]], current: LoadedVersion | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, list[Any]]]:
        """Check feature columns (one list per feature, equal lengths) against the schema; see `validate_rows`."""
        cur = current or self.current
        assert cur is not None, "model not loaded"
        missing = [n for n in cur.feature_names if n not in columns]
        extra = sorted(str(k) for k in columns if k not in cur.name_set)
        if missing or extra:
            _raise(
                ([f"missing input(s) {missing}"] if missing else []) + ([f"unknown input(s) {extra}"] if extra else [])
            )
        errors: list[str] = []
        arrays: dict[str, np.ndarray] = {}
        for spec in cur.features:
            name = spec["name"]
            values = columns[name]
            if spec.get("type") == "string":
                arrays[name] = np.asarray(values, dtype=object)
                if _strings_ok(values, cur.allowed.get(name)):
                    continue
                allowed = cur.allowed.get(name)
                for i, value in enumerate(values):
                    if type(value) is not str:
                        errors.append(
                            f"instance {i}: field '{name}' must be a string, got {type(value).__name__} {value!r}"
                        )
                    elif allowed is not None and value not in allowed:
                        errors.append(
                            f"instance {i}: field '{name}' has unknown category {value!r}; allowed: {spec['allowed']}"
                        )
            else:
                fast = _numbers_ok(spec, values)
                if fast is not None:
                    arrays[name] = fast
                    continue
                checked, problems = _check_numbers(spec, values)
                errors.extend(f"instance {i}: field '{name}' {p}" for i, p in problems)
                columns[name] = checked
                arrays[name] = np.asarray(checked, dtype=np.float64) if not problems else np.zeros(0)
        _raise(errors)
        return arrays, columns

    def _rows_from_v2(self, request: InferRequest, cur: LoadedVersion) -> list[Any] | dict[str, list[Any]]:
        """Rows (dicts) or, for a columnar request that needs no enrichment, the columns themselves."""
        inputs = list(request.inputs or [])
        if not inputs:
            raise InvalidInput("v2 request has no inputs")
        if len(inputs) == 1 and inputs[0].name not in cur.name_set:
            # One input holding whole rows: shape [n, n_features] in schema order, or [n] JSON objects.
            values = _input_values(inputs[0])
            rows: list[Any] = []
            for i, item in enumerate(values):
                if isinstance(item, (str, bytes)):
                    try:
                        item = json.loads(item)
                    except ValueError as exc:
                        raise InvalidInput(f"input '{inputs[0].name}' element {i} is not a JSON object") from exc
                if isinstance(item, dict):
                    rows.append(item)
                elif isinstance(item, list):
                    if len(item) != len(cur.feature_names):
                        raise InvalidInput(
                            f"input '{inputs[0].name}' row {i} has {len(item)} values, expected "
                            f"{len(cur.feature_names)} in order {cur.feature_names}"
                        )
                    rows.append(dict(zip(cur.feature_names, item, strict=True)))
                else:
                    raise InvalidInput(f"input '{inputs[0].name}' row {i} must be a list of feature values")
            return rows
        # Columnar: one input per feature column (or a customer_id column), each of shape [n] or [n, 1].
        columns: dict[str, list[Any]] = {}
        for inp in inputs:
            if inp.name in columns:
                raise InvalidInput(f"input '{inp.name}' given twice")
            columns[inp.name] = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in _input_values(inp)]
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise InvalidInput(f"inputs have different lengths {sorted(lengths)}; every column needs one value a row")
        n = lengths.pop()
        if self.enricher is None or not any(k in columns for k in ("customer_id", "customerID")):
            return columns  # already columnar: validated without building row dicts
        return [{name: col[i] for name, col in columns.items()} for i in range(n)]

    # -- inference -------------------------------------------------------------------------------------------------
    def _score(self, rows: list[Any] | dict[str, list[Any]], cur: LoadedVersion, request_id: str) -> np.ndarray:
        if isinstance(rows, dict):
            arrays, columns = self.validate_columns(rows, cur)
        else:
            given: list[Any] = rows
            if self.enricher is not None:
                from slipway.serving.enrichment import UnknownEntityError

                try:
                    given = self.enricher.enrich(given)
                except UnknownEntityError as exc:
                    raise InvalidInput(str(exc)) from exc
            arrays, columns = self.validate_rows(given, cur)
        p = cur.predictor.predict_positive(arrays)
        n = len(p)
        serving_metrics.PREDICTIONS.labels(self.name, cur.version, self.variant or "").inc(n)
        if cur.payload_logger is not None:
            names = cur.feature_names
            logged = [{k: columns[k][i] for k in names} for i in range(n)]
            cur.payload_logger.log(request_id, logged, p.tolist())
        return p

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        cur = self.current
        if cur is None:
            raise InvalidInput("model is not loaded yet")
        if isinstance(payload, InferRequest):
            request_id = str(payload.id) if payload.id else uuid.uuid4().hex
            try:
                rows = self._rows_from_v2(payload, cur)
            except InvalidInput:
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise InvalidInput(f"v2 inputs could not be read as feature rows: {exc}") from exc
            p = self._score(rows, cur, request_id)
            output = InferOutput(name=OUTPUT_NAME, shape=[len(p)], datatype="FP64", data=p.tolist())
            return InferResponse(
                response_id=request_id, model_name=self.name, model_version=cur.version, infer_outputs=[output]
            )
        if not isinstance(payload, dict):
            raise InvalidInput('body must be a JSON object like {"instances": [{feature: value, ...}]}')
        if "instances" not in payload:
            raise InvalidInput('body has no "instances": send {"instances": [{feature: value, ...}]}')
        request_id = (headers or {}).get("x-request-id") or uuid.uuid4().hex
        p = self._score(payload["instances"], cur, request_id)
        return {
            "predictions": [
                {"churn_probability": x, "churn": "Yes" if x >= cur.threshold else "No"} for x in p.tolist()
            ],
            "model_version": cur.version,
        }


def _decision_threshold(params: dict[str, Any]) -> float:
    """The registered `decision_threshold`, or 0.5 for versions registered without one."""
    try:
        value = float(params.get("decision_threshold", 0.5))
    except (TypeError, ValueError):
        logger.warning("ignoring unreadable decision_threshold %r; using 0.5", params.get("decision_threshold"))
        return 0.5
    return value if 0.0 < value < 1.0 else 0.5


def _raise(errors: list[str]) -> None:
    if not errors:
        return
    more = f" (and {len(errors) - MAX_ERRORS_REPORTED} more)" if len(errors) > MAX_ERRORS_REPORTED else ""
    raise InvalidInput("; ".join(errors[:MAX_ERRORS_REPORTED]) + more)


def _strings_ok(values: list[Any], allowed: frozenset[str] | None) -> bool:
    """True when every value is an allowed string (a set comparison instead of a Python loop)."""
    try:
        if allowed is not None:
            return set(values) <= allowed  # allowed holds only strings, so nothing else can be a member
        return all(type(v) is str for v in values)
    except TypeError:  # unhashable values: the slow path names them
        return False


def _numbers_ok(spec: dict[str, Any], values: list[Any]) -> np.ndarray | None:
    """The column as float64 when every value is a finite in-range int/float (integral for integers), else None."""
    if not set(map(type, values)) <= {int, float}:
        return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except OverflowError:
        return None
    lo, hi = spec.get("min"), spec.get("max")
    if not np.isfinite(arr).all():
        return None
    if (lo is not None and (arr < lo).any()) or (hi is not None and (arr > hi).any()):
        return None
    if spec.get("type") == "integer" and not (arr == np.floor(arr)).all():
        return None
    return arr


def _check_numbers(spec: dict[str, Any], values: list[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
    kind = spec.get("type")
    lo, hi = spec.get("min"), spec.get("max")
    problems: list[tuple[int, str]] = []
    out: list[Any] = []
    for i, value in enumerate(values):
        t = type(value)
        if t is not int and t is not float:
            if isinstance(value, (np.integer, np.floating)) and not isinstance(value, np.bool_):
                value = value.item()
            else:
                problems.append((i, f"must be a {kind}, got {t.__name__} {value!r}"))
                out.append(value)
                continue
        if isinstance(value, float):
            if not math.isfinite(value):
                problems.append((i, f"must be a finite {kind}, got {value!r}"))
            elif kind == "integer":
                if not value.is_integer():
                    problems.append((i, f"must be an integer, got {value!r}"))
                else:
                    value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.append((i, f"is {value!r}, outside the allowed range [{lo}, {hi}]"))
        out.append(value)
    return out, problems


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


# -- model repository with reload ------------------------------------------------------------------------------------
class ReloadingModelRepository(ModelRepository):  # type: ignore[misc]
    """KServe's model repository whose `load` (POST /v2/repository/models/<name>/load) hot-swaps a model that has
    an async `reload()` (ChurnModel); other models keep KServe's behaviour (nothing to reload)."""

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        reload = getattr(model, "reload", None)
        if reload is not None and asyncio.iscoroutinefunction(reload):
            version = await reload()
            logger.info("reloaded %s: now serving v%s", name, version)
        return True

    def describe(self, name: str) -> tuple[str, str] | None:
        """(version, variant) labels of a served model for the metrics middleware; None when not served."""
        model = self.get_model(name)
        if model is None:
            return None
        return str(getattr(model, "version", "") or ""), str(getattr(model, "variant", "") or "")


# -- auth ----------------------------------------------------------------------------------------------------------
class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 unless `Authorization: Bearer <token>`; probes and /metrics stay open."""

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
def _quiet_request_path() -> None:
    # FastAPI warns about ORJSONResponse on every response (sklearn resets the "once" registry): filter it.
    warnings.filterwarnings("ignore", message=".*ORJSONResponse.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="fastapi")


def _add_middlewares(app: Any, repo: ReloadingModelRepository, dataplane: Any, bearer_token: str | None) -> None:
    from slipway.serving.routes import FastInferenceRoutes

    # add_middleware wraps outermost-last: auth runs first (metrics count 401s), the lean inference path last.
    app.add_middleware(FastInferenceRoutes, dataplane=dataplane)
    app.add_middleware(serving_metrics.InferenceMetricsMiddleware, describe=repo.describe)
    if bearer_token:
        app.add_middleware(BearerAuthMiddleware, token=bearer_token)


def create_app(model: kserve.Model, bearer_token: str | None = None) -> Any:
    """An in-process FastAPI app serving `model` (for tests and embedding), built as ModelServer builds its own."""
    import kserve.model_server as ms
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    _quiet_request_path()
    repo = ReloadingModelRepository()
    repo.update(model)
    dataplane = DataPlane(model_registry=repo)
    # RESTServer.create_application decorates the module-level `kserve.model_server:app`: give it a fresh one.
    app = FastAPI(title="Slipway churn model", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse)
    ms.app = app
    RESTServer(
        "kserve.model_server:app", dataplane, ModelRepositoryExtension(model_registry=repo), 0
    ).create_application()
    _add_middlewares(app, repo, dataplane, bearer_token)
    return app


def build_model_server(http_port: int = 8080, bearer_token: str | None = None, workers: int = 1) -> Any:
    """The real `kserve.ModelServer` (REST only, reloadable repository); a token protects non-probe routes."""
    import kserve.model_server as ms

    _quiet_request_path()
    repo = ReloadingModelRepository()
    server = kserve.ModelServer(http_port=http_port, enable_grpc=False, workers=workers, registered_models=repo)
    _add_middlewares(ms.app, repo, server.dataplane, bearer_token)
    return server


@dataclass
class ServeOptions:
    """How `serve` builds the model: traffic variant label, payload log target, Feast enrichment."""

    variant: str | None = None
    payload_log: str | None = None  # folder, "store" (artifact store from settings) or kafka://host:port/topic
    feast_repo: str | None = None
    online_store: str = "sqlite"
    redis_url: str | None = None
    feast_project: str | None = None


def build_model(model_dir: str | Path, name: str, options: ServeOptions) -> ChurnModel:
    """A loaded ChurnModel with the enricher and payload logger `options` ask for."""
    enricher = None
    if options.feast_repo:
        from slipway.serving.enrichment import FeastEnricher

        enricher = FeastEnricher(
            options.feast_repo, options.online_store, options.redis_url, project=options.feast_project
        )
    payload_log: Any = options.payload_log or None
    if payload_log == "store":
        from slipway.settings import Settings
        from slipway.storage import store_from_settings

        payload_log = store_from_settings(Settings())
    model = ChurnModel(name, model_dir, variant=options.variant, payload_log=payload_log, enricher=enricher)
    model.load()
    return model


def serve(
    model_dir: str | Path,
    name: str = "churn",
    http_port: int = 8080,
    bearer_token: str | None = None,
    *,
    workers: int = 1,
    options: ServeOptions | None = None,
) -> None:
    """Load the model (verified) and serve it until SIGTERM; `workers > 1` runs that many server processes."""
    options = options or ServeOptions()
    if workers > 1:
        _supervise_workers(model_dir, name, http_port, workers, options, bearer_token)
        return
    model = build_model(model_dir, name, options)
    build_model_server(http_port=http_port, bearer_token=bearer_token).start([model])


def _worker_args(model_dir: str | Path, name: str, port: int, options: ServeOptions) -> list[str]:
    args = ["--model-dir", str(model_dir), "--name", name, "--http-port", str(port)]
    for flag, value in (
        ("--variant", options.variant),
        ("--payload-log", options.payload_log),
        ("--feast-repo", options.feast_repo),
        ("--redis-url", options.redis_url),
        ("--feast-project", options.feast_project),
    ):
        if value:
            args += [flag, value]
    return [*args, "--online-store", options.online_store]


def _supervise_workers(
    model_dir: str | Path, name: str, port: int, workers: int, options: ServeOptions, bearer_token: str | None
) -> None:
    """Bind the port once and start `workers` processes that each load the model and accept on that socket.

    Each worker builds its own model (ONNX sessions do not pickle) and runs gc.freeze() after its load. A reload
    request reaches one worker; SIGHUP to this supervisor reloads them all. The supervisor exits when a worker dies.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    fd = sock.fileno()
    cmd = [sys.executable, "-m", "slipway.serving.churn_model", *_worker_args(model_dir, name, port, options)]
    env = {k: v for k, v in os.environ.items() if k != "SLIPWAY_SERVING_TOKEN"}
    if bearer_token:
        env["SLIPWAY_SERVING_TOKEN"] = bearer_token  # the token may come from .env settings, not the environment
    cmd += ["--bearer-token-env", "SLIPWAY_SERVING_TOKEN"]
    procs = [subprocess.Popen([*cmd, "--listen-fd", str(fd)], pass_fds=[fd], env=env) for _ in range(workers)]
    logger.info("started %d workers on port %d: %s", workers, port, [p.pid for p in procs])
    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if sig != signal.SIGHUP:
            stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        while True:
            codes = [p.poll() for p in procs]
            if stopping and all(c is not None for c in codes):
                return
            if not stopping and any(c is not None for c in codes):
                raise SystemExit(f"a worker exited with code {next(c for c in codes if c is not None)}")
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        sock.close()


_EARLY_HUP = threading.Event()


def _run_worker(fd: int, model: ChurnModel, port: int, bearer_token: str | None) -> None:
    """One worker process: KServe's REST server on the inherited listening socket."""
    from kserve.protocol.rest.server import RESTServer

    sock = socket.socket(fileno=fd)
    server = build_model_server(http_port=port, bearer_token=bearer_token)
    server.register_model(model)
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    async def reload_logged() -> None:
        try:
            await model.reload()
        except Exception:  # the old version keeps serving; say why the new one did not load
            logger.exception("SIGHUP reload of %s failed; still serving v%s", model.name, model.version)

    def on_hup(_sig: int, _frame: Any) -> None:
        loop = loop_holder.get("loop")
        if loop is None:
            _EARLY_HUP.set()  # the server is not running yet: serve_and_remember reloads once it is
        else:
            loop.call_soon_threadsafe(lambda: loop.create_task(reload_logged()))

    rest = RESTServer("kserve.model_server:app", server.dataplane, server.model_repository_extension, port, workers=1)
    original_serve = rest._server.serve

    async def serve_and_remember(sockets: Any = None) -> None:
        loop_holder["loop"] = asyncio.get_running_loop()
        if _EARLY_HUP.is_set():
            asyncio.get_running_loop().create_task(reload_logged())
        await original_serve(sockets=sockets)

    rest._server.serve = serve_and_remember
    signal.signal(signal.SIGHUP, on_hup)
    rest.run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a Slipway churn model with KServe.")
    parser.add_argument("--model-dir", required=True, help="folder with model.joblib and model.json")
    parser.add_argument("--name", default="churn")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    parser.add_argument("--variant", default=None, help="traffic variant label for metrics and payload logs")
    parser.add_argument(
        "--payload-log", default=None, help="payload log target: a folder, 'store', or kafka://host:port/topic"
    )
    parser.add_argument("--feast-repo", default=None, help="Feast repo for customer_id enrichment (off when unset)")
    parser.add_argument("--online-store", default="sqlite", choices=["sqlite", "redis"])
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--feast-project", default=None)
    parser.add_argument(
        "--bearer-token-env",
        default="SLIPWAY_SERVING_TOKEN",
        help="environment variable holding the bearer token; unset or empty disables auth",
    )
    parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from slipway.logging_config import configure_logging

    # kserve.trace and uvicorn.access log every request: configure_logging keeps them at WARNING.
    configure_logging(os.environ.get("SLIPWAY_LOG_LEVEL", "INFO"), os.environ.get("SLIPWAY_LOG_FORMAT", "text"))
    options = ServeOptions(
        variant=args.variant,
        payload_log=args.payload_log,
        feast_repo=args.feast_repo,
        online_store=args.online_store,
        redis_url=args.redis_url,
        feast_project=args.feast_project,
    )
    token = os.environ.get(args.bearer_token_env) or None
    if args.listen_fd is not None:
        # A SIGHUP that arrives while this worker still loads must not kill it (the default action): remember it
        # and reload once the server runs, so the folder's newest version is what ends up served.
        signal.signal(signal.SIGHUP, lambda _sig, _frame: _EARLY_HUP.set())
        _run_worker(args.listen_fd, build_model(args.model_dir, args.name, options), args.http_port, token)
        return
    serve(args.model_dir, args.name, args.http_port, token, workers=args.workers, options=options)


if __name__ == "__main__":
    main()
