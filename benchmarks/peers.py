"""Benchmark peers of the Slipway predictor, each started as its own server process by bench_serving.py.

- `naive`: the usual KServe custom model (DataFrame from the instances, `predict_proba`, no validation);
- `asgi`: a trivial ASGI endpoint under the same uvicorn that reads the body and returns a constant JSON answer
  (the ceiling of any Python HTTP server on this machine).

`python benchmarks/peers.py naive --model-dir DIR --port 8081` / `python benchmarks/peers.py asgi --port 8082`
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def run_naive(model_dir: str, port: int) -> None:
    saved, sys.argv = sys.argv, sys.argv[:1]  # kserve parses sys.argv at import time
    import joblib
    import kserve
    import pandas as pd

    sys.argv = saved

    class NaiveChurnModel(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.model: Any = None

        def load(self) -> bool:
            self.model = joblib.load(f"{model_dir}/model.joblib")
            self.ready = True
            return True

        def predict(self, payload: Any, headers: Any = None) -> Any:
            frame = pd.DataFrame(payload["instances"])
            return {"predictions": self.model.predict_proba(frame)[:, 1].tolist()}

    model = NaiveChurnModel("churn")
    model.load()
    kserve.ModelServer(http_port=port, enable_grpc=False).start([model])


def run_asgi(port: int) -> None:
    import uvicorn

    body = b'{"predictions":[{"churn_probability":0.5,"churn":"Yes"}]}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["naive", "asgi"])
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.kind == "naive":
        run_naive(args.model_dir, args.port)
    else:
        run_asgi(args.port)


if __name__ == "__main__":
    main()
