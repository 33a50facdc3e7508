"""The image-classifier KServe predictor: v1 and v2 over the in-process app, bad images as 400, bearer auth,
and the real ModelServer as a subprocess."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

CLASSES = ["ants", "bees", "wasps"]
SIZE = 64


def _png(color: tuple[int, int, int], size: tuple[int, int] = (80, 60), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", size, color)
    img.paste((255 - color[0], 255 - color[1], 255 - color[2]), (10, 10, 40, 40))
    img.save(buf, format=fmt)
    return buf.getvalue()


def _bomb_png(width: int = 10_000, height: int = 5_000) -> bytes:
    """A tiny PNG whose header claims 50 MP."""
    data = bytearray(_png((0, 0, 0), (1, 1)))
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from slipway.registry import ModelRegistry
    from slipway.storage import LocalArtifactStore
    from slipway.vision.export import export_torchscript, register_image_model
    from slipway.vision.model import build_classifier

    torch.manual_seed(0)
    work = tmp_path_factory.mktemp("image-model")
    net = build_classifier(len(CLASSES), image_size=SIZE, strategy="linear_probe").eval()
    exported = export_torchscript(net, CLASSES, SIZE, work / "export")
    registry = ModelRegistry(LocalArtifactStore(work / "store"))
    register_image_model(registry, "insects", exported, metrics={}, params={}, training_data_sha256="0" * 64)
    return registry.download("insects", None, work / "serving")


@pytest.fixture(scope="module")
def loaded(model_dir: Path):  # type: ignore[no-untyped-def]
    from slipway.serving.image_model import ImageClassifierModel

    model = ImageClassifierModel("insects", model_dir, top_k=3, device="cpu")
    assert model.load()
    return model


@pytest.fixture(scope="module")
def app(loaded):  # type: ignore[no-untyped-def]
    from slipway.serving.churn_model import create_app

    return create_app(loaded)


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def _expected(loaded: Any, data: bytes) -> np.ndarray:
    from slipway.vision.data import decode_image, to_square_tensor

    x = to_square_tensor(decode_image(data), SIZE).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        return loaded.module(x)[0].numpy()


def test_v1_accepts_tf_serving_b64_objects_and_plain_strings(app: Any, loaded: Any) -> None:
    images = [_png((200, 30, 30)), _png((30, 200, 30), fmt="JPEG"), _png((30, 30, 200), (50, 90))]
    body = {"instances": [{"image_bytes": {"b64": _b64(images[0])}}, {"b64": _b64(images[1])}, _b64(images[2])]}
    r = _call(app, "POST", "/v1/models/insects:predict", json=body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 3
    for pred, data in zip(preds, images, strict=True):
        expected = _expected(loaded, data)
        probs = [t["probability"] for t in pred["top_k"]]
        assert [t["label"] for t in pred["top_k"]] == [CLASSES[i] for i in np.argsort(-expected)]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1.0) < 1e-5
        assert pred["label"] == CLASSES[int(expected.argmax())]
        assert pred["probability"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_v1_top_k(app: Any) -> None:
    r = _call(app, "POST", "/v1/models/insects:predict", json={"instances": [_b64(_png((9, 9, 9)))], "top_k": 1})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"][0]["top_k"]) == 1


def test_v2_bytes_input(app: Any, loaded: Any) -> None:
    images = [_png((120, 60, 10)), _png((10, 60, 120))]
    body = {
        "id": "img-1",
        "inputs": [{"name": "image", "shape": [2], "datatype": "BYTES", "data": [_b64(i) for i in images]}],
        "parameters": {"top_k": 2},
    }
    r = _call(app, "POST", "/v2/models/insects/infer", json=body)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["id"] == "img-1"
    assert out["label"]["shape"] == [2, 2] and out["probability"]["shape"] == [2, 2]
    first = _expected(loaded, images[0])
    assert out["label"]["data"][0] == CLASSES[int(first.argmax())]
    assert out["probability"]["data"][0] == pytest.approx(float(first.max()), abs=1e-5)
    no_id = _call(app, "POST", "/v2/models/insects/infer", json={"inputs": body["inputs"]})
    assert no_id.status_code == 200 and isinstance(no_id.json()["id"], str) and no_id.json()["id"]


@pytest.mark.parametrize(
    ("instances", "fragment"),
    [
        (["this is not base64!"], "instance 0: not valid base64"),
        ([_b64(b"plain text, not an image")], "instance 0: not an image"),
        ([""], "instance 0: empty image (0 bytes)"),
        ([{"image_bytes": {"b64": ""}}], "empty image"),
        ([_b64(_png((1, 2, 3))), _b64(_bomb_png())], "instance 1: image exceeds the limit of 25,000,000 pixels"),
        ([_b64(_png((1, 2, 3))[:50])], "instance 0: not a decodable image"),
        ([{"image": "x"}], 'expected a base64 string, {"b64": "..."}'),
        ([123], "got int"),
        ([], "no instances"),
    ],
)
def test_v1_bad_images_are_400_with_a_reason(app: Any, instances: list[Any], fragment: str) -> None:
    r = _call(app, "POST", "/v1/models/insects:predict", json={"instances": instances})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"foo": 1}, '"instances"'),
        ({"instances": "abc"}, "must be a list"),
        ({"instances": [_b64(_png((1, 1, 1)))], "top_k": 0}, "top_k must be an integer between 1 and 3"),
        ({"instances": [_b64(_png((1, 1, 1)))], "top_k": "2"}, "top_k"),
        ({"instances": [_b64(_png((1, 1, 1)))] * 65}, "at most 64"),
    ],
)
def test_v1_bad_bodies_are_400(app: Any, body: dict[str, Any], fragment: str) -> None:
    r = _call(app, "POST", "/v1/models/insects:predict", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_v2_bad_inputs_are_400(app: Any) -> None:
    wrong_type = {"id": "a", "inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    r = _call(app, "POST", "/v2/models/insects/infer", json=wrong_type)
    assert r.status_code == 400 and "send images as BYTES" in r.text
    bomb = {"id": "b", "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [_b64(_bomb_png())]}]}
    r = _call(app, "POST", "/v2/models/insects/infer", json=bomb)
    assert r.status_code == 400 and "decompression-bomb" in r.text
    two = {"id": "c", "inputs": [wrong_type["inputs"][0], bomb["inputs"][0]]}
    assert _call(app, "POST", "/v2/models/insects/infer", json=two).status_code == 400


def test_bearer_token(loaded: Any) -> None:
    from slipway.serving.churn_model import create_app

    secured = create_app(loaded, bearer_token="s3cret")
    body = {"instances": [_b64(_png((5, 5, 5)))]}
    assert _call(secured, "GET", "/v2/health/ready").status_code == 200
    assert _call(secured, "POST", "/v1/models/insects:predict", json=body).status_code == 401
    ok = _call(secured, "POST", "/v1/models/insects:predict", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200, ok.text


@pytest.fixture
def real_server(model_dir: Path) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), KSERVE_LOGLEVEL="WARNING", SLIPWAY_SERVING_TOKEN="tok")
    cmd = [sys.executable, "-m", "slipway.serving.image_model", "--model-dir", str(model_dir), "--name", "insects"]
    proc = subprocess.Popen(
        [*cmd, "--http-port", str(port), "--device", "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                tail = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                pytest.fail(f"image model server exited with {proc.returncode}: {tail}")
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "image model server not ready after 90 s"
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_real_model_server_subprocess(real_server: str) -> None:
    auth = {"Authorization": "Bearer tok"}
    url = f"{real_server}/v1/models/insects:predict"
    body = {"instances": [{"image_bytes": {"b64": _b64(_png((200, 100, 0)))}}]}
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    r = httpx.post(url, json=body, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] in CLASSES
    bad = httpx.post(url, json={"instances": [_b64(_bomb_png())]}, headers=auth, timeout=30)
    assert bad.status_code == 400 and "decompression-bomb" in bad.json()["error"]
    v2 = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [_b64(_png((1, 2, 3)))]}]}
    r2 = httpx.post(f"{real_server}/v2/models/insects/infer", json=v2, headers=auth, timeout=30)
    assert r2.status_code == 200, r2.text
    assert r2.json()["outputs"][0]["data"][0] in CLASSES
