#!/usr/bin/env bash
# End-to-end smoke test on the kind cluster from `make kind-up`: build and load the image, compile and upload the
# pipeline to KFP, run it, register a churn model in MinIO, wait for the InferenceService, send one prediction.
# Needs docker, kind, kubectl, curl and the Slipway venv (python, slipway) on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly CLUSTER="slipway"
readonly NS="slipway"
readonly IMAGE="ghcr.io/slipway-mlops/slipway:0.1.0"  # the tag the manifests reference; kind uses the local build
readonly SERVING_IMAGE="ghcr.io/slipway-mlops/slipway-serving:0.1.0"  # recommender and image-classifier
readonly KFP="http://127.0.0.1:8888"
readonly PREDICTOR="http://127.0.0.1:8081"
pids=()

log() { printf '==> %s\n' "$*" >&2; }
cleanup() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Forward a Service to localhost and wait (bounded) until `url` answers.
forward() {
  local namespace="$1" service="$2" ports="$3" url="$4" try
  kubectl -n "$namespace" port-forward "svc/$service" "$ports" >/dev/null 2>&1 &
  pids+=("$!")
  for try in $(seq 1 30); do
    if curl -fsS -o /dev/null "$url"; then return 0; fi
    sleep 2
  done
  echo "error: $url did not answer after $try tries (port-forward to $namespace/$service)" >&2
  return 1
}

secret() { kubectl -n "$NS" get secret "$1" -o "jsonpath={.data.$2}" | base64 -d; }

kubectl config use-context "kind-$CLUSTER" >/dev/null

log "building $IMAGE and $SERVING_IMAGE (shared build stage) and loading them into kind"
docker build -f "$ROOT/docker/component.Dockerfile" -t "$IMAGE" "$ROOT"
docker build -f "$ROOT/docker/serving.Dockerfile" -t "$SERVING_IMAGE" "$ROOT"
kind load docker-image "$IMAGE" "$SERVING_IMAGE" --name "$CLUSTER"

log "compiling and uploading the pipelines to KFP"
forward kubeflow ml-pipeline 8888:8888 "$KFP/apis/v2beta1/healthz"
python "$ROOT/scripts/upload_pipelines.py" --image "$IMAGE" --version "smoke-$(date +%s)" --host "$KFP" \
  --out "$ROOT/build/pipelines"

log "running churn-training on KFP (up to 30 minutes)"
python - "$KFP" "$ROOT/build/pipelines/churn-training.yaml" <<'PY'
import sys

import kfp

host, package = sys.argv[1], sys.argv[2]
client = kfp.Client(host=host)
run = client.create_run_from_pipeline_package(
    package, arguments={"n_rows": 1000}, run_name="kind-smoke", experiment_name="kind-smoke"
)
state = client.wait_for_run_completion(run.run_id, timeout=1800).state
print(f"run {run.run_id}: {state}")
sys.exit(0 if state == "SUCCEEDED" else 1)
PY

log "registering churn v1 in MinIO through its NodePort (127.0.0.1:9000)"
SLIPWAY_S3_ENDPOINT=127.0.0.1:9000 SLIPWAY_S3_SECURE=false \
  SLIPWAY_S3_ACCESS_KEY="$(secret slipway-s3-credentials AWS_ACCESS_KEY_ID)" \
  SLIPWAY_S3_SECRET_KEY="$(secret slipway-s3-credentials AWS_SECRET_ACCESS_KEY)" \
  SLIPWAY_HOME="$ROOT/build/kind-smoke" \
  slipway run churn-training --n-rows 1000

log "waiting for InferenceService churn"
kubectl -n "$NS" wait --for=condition=Ready inferenceservice/churn --timeout=600s

log "sending one prediction"
forward "$NS" churn-predictor 8081:80 "$PREDICTOR/v2/health/ready"
SLIPWAY_SERVING_TOKEN="$(secret slipway-serving-token token)" python - "$PREDICTOR" <<'PY'
import json
import os
import sys

import httpx

from slipway.data.churn import generate_synthetic_churn
from slipway.data.churn_schema import feature_schema

base = sys.argv[1]
cast = {"integer": int, "number": float, "string": str}
types = {f["name"]: cast[f["type"]] for f in feature_schema()["features"]}
raw = generate_synthetic_churn(n_rows=2, seed=7).to_dict(orient="records")
rows = [{name: to(row[name]) for name, to in types.items()} for row in raw]
response = httpx.post(
    f"{base}/v1/models/churn:predict",
    json={"instances": rows},
    headers={"Authorization": f"Bearer {os.environ['SLIPWAY_SERVING_TOKEN']}"},
    timeout=30,
)
response.raise_for_status()
predictions = response.json()["predictions"]
assert len(predictions) == 2 and all(0.0 <= p["churn_probability"] <= 1.0 for p in predictions), predictions
print(json.dumps(response.json()))
PY
log "smoke test passed"
