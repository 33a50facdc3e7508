"""KServe predictor for the recommender: a user id and/or recent items in, the top-K unseen items out.

Run it as `python -m slipway.serving.recommender_model --model-dir /mnt/models --name recommender --http-port 8080`.

v1: `POST /v1/models/<name>:predict` with `{"instances": [{"user_id": "u17", "recent_items": ["i3"], "k": 10}]}`
answers `{"predictions": [{"items": [...], "scores": [...], "fallback": false, "unknown_items": []}]}`.
v2: input `user_id` (BYTES, shape [n]), optional parameter `k`; outputs `items` (BYTES) and `scores` (FP32), both
shaped [n, k]. An unknown user without known items gets the most popular items (`fallback: true`); malformed
input is answered 400 with the reason.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_saved_argv = sys.argv
sys.argv = sys.argv[:1]  # `import kserve` parses sys.argv at import time
try:
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _saved_argv

logger = logging.getLogger(__name__)

DEFAULT_K = 10
MAX_K = 100
MAX_INSTANCES = 256
MAX_RECENT_ITEMS = 500
MAX_ID_LENGTH = 128
_FIELDS = {"user_id", "recent_items", "k"}


class RecommenderModel(kserve.Model):  # type: ignore[misc]
    """A verified `slipway.recommender.Recommender` behind KServe's v1 and v2 protocols."""

    def __init__(self, name: str, model_dir: str | Path, variant: str = "") -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.variant = variant
        self.recommender: Any = None
        self.meta: Any = None
        self.ready = False

    def load(self) -> bool:
        from slipway.errors import ConfigError
        from slipway.recommender.model import Recommender
        from slipway.registry.model_registry import load_verified_model

        model, meta = load_verified_model(self.model_dir)  # sha256 checked before unpickling
        if not isinstance(model, Recommender):
            raise ConfigError(f"{self.model_dir} holds a {type(model).__name__}, not a slipway Recommender")
        self.recommender, self.meta = model, meta
        self.ready = True
        gc.freeze()  # the similarity matrix and id maps live for the whole process: keep them out of GC scans
        logger.info("loaded recommender %s v%s (%d items)", meta.name, meta.version, model.n_items)
        return True

    @property
    def version(self) -> str:
        return str(getattr(self.meta, "version", ""))

    def _parse_instance(self, i: int, inst: Any, default_k: int) -> tuple[str | None, list[str], int]:
        if not isinstance(inst, dict):
            raise InvalidInput(f"instance {i}: expected an object with user_id and/or recent_items")
        extra = sorted(str(k) for k in inst if k not in _FIELDS)
        if extra:
            raise InvalidInput(f"instance {i}: unknown field(s) {extra}; allowed: {sorted(_FIELDS)}")
        user = inst.get("user_id")
        recent = inst.get("recent_items", [])
        if user is None and not recent:
            raise InvalidInput(f"instance {i}: send user_id, recent_items or both")
        if user is not None:
            if isinstance(user, bool) or not isinstance(user, str | int) or len(str(user)) > MAX_ID_LENGTH:
                raise InvalidInput(f"instance {i}: user_id must be a string or integer of <= {MAX_ID_LENGTH} chars")
            user = str(user)
        if not isinstance(recent, list) or len(recent) > MAX_RECENT_ITEMS:
            raise InvalidInput(f"instance {i}: recent_items must be a list of at most {MAX_RECENT_ITEMS} item ids")
        if any(isinstance(x, bool) or not isinstance(x, str | int) for x in recent):
            raise InvalidInput(f"instance {i}: recent_items must hold string or integer item ids")
        k = inst.get("k", default_k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"instance {i}: k must be an integer within 1..{MAX_K}, got {k!r}")
        return user, [str(x) for x in recent], k

    def recommend_instances(self, instances: Any, default_k: int = DEFAULT_K) -> list[dict[str, Any]]:
        if not isinstance(instances, list) or not instances:
            raise InvalidInput('send {"instances": [{"user_id": ..., "recent_items": [...], "k": 10}]}')
        if len(instances) > MAX_INSTANCES:
            raise InvalidInput(f"at most {MAX_INSTANCES} instances per request, got {len(instances)}")
        parsed = [self._parse_instance(i, inst, default_k) for i, inst in enumerate(instances)]
        out = []
        for user, recent, k in parsed:
            rec = self.recommender.recommend(user, recent, k)
            out.append(
                {"items": rec.items, "scores": rec.scores, "fallback": rec.fallback, "unknown_items": rec.unknown_items}
            )
        return out

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload)
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput('body must be a JSON object like {"instances": [{"user_id": "u1"}]}')
        return {"predictions": self.recommend_instances(payload["instances"]), "model_version": self.version}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = {inp.name: inp for inp in (request.inputs or [])}
        if "user_id" not in inputs:
            raise InvalidInput("v2 request needs an input named 'user_id' (BYTES, shape [n])")
        raw = inputs["user_id"].data
        if not isinstance(raw, list):
            try:
                raw = inputs["user_id"].as_numpy().ravel().tolist()
            except Exception as e:
                raise InvalidInput(f"input 'user_id' could not be decoded: {e}") from e
        users = [u.decode() if isinstance(u, bytes) else u for u in raw]
        k = (request.parameters or {}).get("k", DEFAULT_K)
        if hasattr(k, "int64_param"):
            k = k.int64_param
        recs = self.recommend_instances([{"user_id": u, "k": k} for u in users])
        width = max(len(r["items"]) for r in recs)
        items = [r["items"] + [""] * (width - len(r["items"])) for r in recs]
        scores = [r["scores"] + [0.0] * (width - len(r["scores"])) for r in recs]
        return InferResponse(
            response_id=str(request.id) if request.id else str(uuid.uuid4()),
            model_name=self.name,
            model_version=self.version or None,
            infer_outputs=[
                InferOutput(name="items", shape=[len(recs), width], datatype="BYTES", data=items),
                InferOutput(name="scores", shape=[len(recs), width], datatype="FP32", data=scores),
            ],
        )


def build_model_server(model: RecommenderModel, http_port: int, bearer_token: str | None = None) -> Any:
    """The real `kserve.ModelServer` (REST only) with Prometheus request metrics and optional bearer auth."""
    import kserve.model_server as ms

    from slipway.serving.metrics import InferenceMetricsMiddleware

    def describe(name: str) -> tuple[str, str] | None:
        return (model.version, model.variant) if name == model.name else None

    if bearer_token:
        from slipway.serving.churn_model import BearerAuthMiddleware

        ms.app.add_middleware(BearerAuthMiddleware, token=bearer_token)
    ms.app.add_middleware(InferenceMetricsMiddleware, describe=describe)
    return kserve.ModelServer(http_port=http_port, enable_grpc=False, workers=1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a Slipway recommender with KServe.")
    parser.add_argument("--model-dir", required=True, help="folder with model.joblib and model.json")
    parser.add_argument("--name", default="recommender")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--variant", default="", help="variant label of the metrics (e.g. control, treatment)")
    parser.add_argument("--bearer-token-env", default="SLIPWAY_SERVING_TOKEN", help="env var holding the token")
    args = parser.parse_args(argv)
    model = RecommenderModel(args.name, args.model_dir, variant=args.variant)
    model.load()
    token = os.environ.get(args.bearer_token_env) or None
    build_model_server(model, args.http_port, token).start([model])


if __name__ == "__main__":
    main()
