"""KServe predictor for registered image classifiers (TorchScript `model.pt` + `classes.json`).

Run it as `python -m slipway.serving.image_model --model-dir DIR --name shapes --http-port 8080`.

v1: `{"instances": [{"image_bytes": {"b64": "..."}}, {"b64": "..."}, "<base64>"], "top_k": 3}`
v2: one BYTES input whose elements are base64-encoded image files; `parameters.top_k` optional.
Answers carry the top-k classes with their probabilities. Anything that is not a decodable image (empty, not an
image, over the pixel limit) is answered with 400 naming the instance and the reason.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gc
import logging
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slipway.errors import ImageDecodeError
from slipway.vision.data import DEFAULT_MAX_PIXELS, decode_image, to_square_tensor

# `import kserve` parses sys.argv at import time; give it a clean argv so our own flags do not leak into it.
_saved_argv = sys.argv
sys.argv = sys.argv[:1]
try:
    import kserve
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
finally:
    sys.argv = _saved_argv

logger = logging.getLogger(__name__)

MAX_INSTANCES = 64
MAX_TOP_K = 20


class ImageClassifierModel(kserve.Model):  # type: ignore[misc]
    """A verified TorchScript image classifier behind KServe's v1 and v2 protocols."""

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        top_k: int = 3,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        device: str = "auto",
    ) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.default_top_k = top_k
        self.max_pixels = max_pixels
        self.device_setting = device
        self.module: Any = None
        self.meta: Any = None
        self.classes: list[str] = []
        self.image_size = 0
        self.ready = False

    def load(self) -> bool:
        from PIL import Image

        from slipway.vision.export import load_verified_image_model
        from slipway.vision.model import resolve_device

        self.device = resolve_device(self.device_setting)
        loaded = load_verified_image_model(self.model_dir, device=self.device)
        self.module, self.meta = loaded.module, loaded.meta
        self.classes, self.image_size = loaded.classes, loaded.image_size
        Image.MAX_IMAGE_PIXELS = self.max_pixels  # PIL's own bomb guard, process-wide
        with torch.no_grad():  # TorchScript optimises on its first calls: pay that before the first request
            for _ in range(2):
                self.module(torch.zeros(1, 3, self.image_size, self.image_size, device=self.device))
        self.ready = True
        gc.freeze()
        logger.info(
            "loaded %s v%s (%d classes) from %s", self.meta.name, self.meta.version, len(self.classes), self.model_dir
        )
        return self.ready

    # -- decoding --------------------------------------------------------------------------------------------------
    def _decode(self, items: Sequence[bytes]) -> torch.Tensor:
        errors: list[str] = []
        tensors: list[torch.Tensor] = []
        for i, data in enumerate(items):
            try:
                tensors.append(to_square_tensor(decode_image(data, max_pixels=self.max_pixels), self.image_size))
            except ImageDecodeError as e:
                errors.append(f"instance {i}: {e}")
        if errors:
            raise InvalidInput("; ".join(errors[:10]) + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""))
        return torch.stack(tensors).to(torch.float32) / 255.0

    def _top_k(self, value: Any) -> int:
        k = self.default_top_k if value is None else value
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(MAX_TOP_K, len(self.classes)):
            raise InvalidInput(f"top_k must be an integer between 1 and {min(MAX_TOP_K, len(self.classes))}, got {k!r}")
        return k

    @torch.no_grad()
    def classify(self, items: Sequence[bytes], top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [n, k], class indices [n, k]) of the k most likely classes per image."""
        if not items:
            raise InvalidInput("no instances: send at least one image")
        if len(items) > MAX_INSTANCES:
            raise InvalidInput(f"{len(items)} images in one request; send at most {MAX_INSTANCES}")
        proba = self.module(self._decode(items).to(self.device))
        values, indices = torch.topk(proba, k=top_k, dim=1)
        return values.cpu().numpy(), indices.cpu().numpy()

    # -- protocols -------------------------------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return self._predict_v2(payload)
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput('body must be a JSON object like {"instances": [{"image_bytes": {"b64": "..."}}]}')
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise InvalidInput('"instances" must be a list of images')
        items = [_v1_instance_bytes(i, inst) for i, inst in enumerate(instances)]
        values, indices = self.classify(items, self._top_k(payload.get("top_k")))
        predictions = []
        for row_values, row_indices in zip(values, indices, strict=True):
            ranked = [
                {"label": self.classes[int(j)], "probability": float(p)}
                for p, j in zip(row_values, row_indices, strict=True)
            ]
            predictions.append({"label": ranked[0]["label"], "probability": ranked[0]["probability"], "top_k": ranked})
        return {"predictions": predictions}

    def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = list(request.inputs or [])
        if len(inputs) != 1:
            raise InvalidInput(f"v2 request needs exactly one BYTES input of base64 images, got {len(inputs)} inputs")
        inp = inputs[0]
        if inp.datatype != "BYTES":
            raise InvalidInput(f"input '{inp.name}' has datatype {inp.datatype}; send images as BYTES (base64)")
        data = inp.data
        if not isinstance(data, list):
            try:
                data = inp.as_numpy().reshape(-1).tolist()
            except Exception as exc:  # undecodable tensor: the client's fault
                raise InvalidInput(f"input '{inp.name}' could not be decoded: {exc}") from exc
        items = [_v2_element_bytes(i, v) for i, v in enumerate(_flatten(data))]
        params = request.parameters or {}
        top_k = params.get("top_k") if isinstance(params, dict) else None
        if top_k is not None and hasattr(top_k, "int64_param"):  # gRPC InferParameter
            top_k = int(top_k.int64_param)
        values, indices = self.classify(items, self._top_k(top_k))
        n, k = values.shape
        labels = [self.classes[int(j)] for j in indices.reshape(-1)]
        outputs = [
            InferOutput(name="label", shape=[n, k], datatype="BYTES", data=labels),
            InferOutput(name="probability", shape=[n, k], datatype="FP32", data=values.reshape(-1).tolist()),
        ]
        return InferResponse(
            response_id=str(request.id) if request.id else str(uuid.uuid4()),
            model_name=self.name,
            model_version=str(getattr(self.meta, "version", "")) or None,
            infer_outputs=outputs,
        )


def _b64decode(text: str | bytes, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{where}: not valid base64 ({e})") from e


def _v1_instance_bytes(i: int, instance: Any) -> bytes:
    where = f"instance {i}"
    if isinstance(instance, str):
        return _b64decode(instance, where)
    if isinstance(instance, dict):
        inner = instance.get("image_bytes", instance)
        if isinstance(inner, dict) and isinstance(inner.get("b64"), str):
            return _b64decode(inner["b64"], where)
    raise InvalidInput(
        f'{where}: expected a base64 string, {{"b64": "..."}} or {{"image_bytes": {{"b64": "..."}}}}, '
        f"got {type(instance).__name__}"
    )


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v) if isinstance(v, list) else [v])
    return out


def _v2_element_bytes(i: int, value: Any) -> bytes:
    if isinstance(value, str):
        return _b64decode(value, f"element {i}")
    if isinstance(value, (bytes, bytearray)):
        # Binary-extension payloads carry raw image bytes; JSON ones carry base64 text.
        try:
            return base64.b64decode(bytes(value), validate=True)
        except (binascii.Error, ValueError):
            return bytes(value)
    raise InvalidInput(f"element {i}: expected a base64-encoded image, got {type(value).__name__}")


# -- servers -------------------------------------------------------------------------------------------------------
def serve(
    model_dir: str | Path,
    name: str = "image-classifier",
    http_port: int = 8080,
    bearer_token: str | None = None,
    *,
    top_k: int = 3,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
) -> None:
    """Load the model (verified) and serve it until SIGTERM; with a token, non-health requests need it."""
    from slipway.serving.churn_model import build_model_server

    model = ImageClassifierModel(name, model_dir, top_k=top_k, max_pixels=max_pixels, device=device)
    model.load()
    build_model_server(http_port=http_port, bearer_token=bearer_token).start([model])


def main(argv: Sequence[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(description="Serve a Slipway image classifier with KServe.")
    parser.add_argument("--model-dir", required=True, help="folder with model.pt, classes.json and model.json")
    parser.add_argument("--name", default="image-classifier")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument(
        "--bearer-token-env",
        default="SLIPWAY_SERVING_TOKEN",
        help="environment variable holding the bearer token; unset or empty disables auth",
    )
    args = parser.parse_args(argv)
    serve(
        args.model_dir,
        args.name,
        args.http_port,
        os.environ.get(args.bearer_token_env) or None,
        top_k=args.top_k,
        max_pixels=args.max_pixels,
        device=args.device,
    )


if __name__ == "__main__":
    main()
