#!/usr/bin/env bash
# Create the `slipway` kind cluster and install pinned versions of everything the manifests need, then apply the
# kind overlay. Needs docker, kind, kubectl, curl and git on PATH. Re-running is safe: each step is an idempotent
# apply.
set -euo pipefail

readonly KIND_VERSION="v0.25.0"                  # creates kindest/node:v1.31.2 (kind-config.yaml)
readonly CERT_MANAGER_VERSION="v1.18.2"
readonly KNATIVE_SERVING_VERSION="knative-v1.20.3"  # Serverless mode (scale to zero)
readonly KOURIER_VERSION="knative-v1.20.1"          # Knative's ingress, lighter than Istio on a laptop
readonly KSERVE_VERSION="v0.21.0"                # same minor as the kserve SDK in constraints.txt
readonly KFP_VERSION="2.17.2"                    # Kubeflow Pipelines standalone, same minor as the kfp SDK
readonly STRIMZI_VERSION="0.48.0"
readonly PROMETHEUS_OPERATOR_VERSION="v0.80.0"   # CRDs only: ServiceMonitor, PrometheusRule
readonly CLUSTER="slipway"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

log() { printf '==> %s\n' "$*" >&2; }

for tool in docker kind kubectl curl git; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH" >&2; exit 1; }
done
kind_found="$(kind version | awk '{print $2}')"
if [[ "$kind_found" != "$KIND_VERSION" ]]; then
  log "warning: kind $kind_found found, kind-config.yaml was written for $KIND_VERSION"
fi

if kind get clusters | grep -qx "$CLUSTER"; then
  log "kind cluster $CLUSTER exists"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --config "$ROOT/kind-config.yaml" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER"

log "cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=300s

log "Knative Serving $KNATIVE_SERVING_VERSION with Kourier $KOURIER_VERSION"
kubectl apply -f "https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION/serving-crds.yaml"
kubectl apply -f "https://github.com/knative/serving/releases/download/$KNATIVE_SERVING_VERSION/serving-core.yaml"
kubectl apply -f "https://github.com/knative/net-kourier/releases/download/$KOURIER_VERSION/kourier.yaml"
kubectl patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
# Knative's queue-proxy and defaults must pass Pod Security "restricted" in the slipway namespace, and the
# predictors' pod securityContext (fsGroup) must pass Knative's own allow-list.
kubectl patch configmap/config-features -n knative-serving --type merge \
  -p '{"data":{"secure-pod-defaults":"enabled","kubernetes.podspec-securitycontext":"enabled"}}'
kubectl -n knative-serving wait --for=condition=Available deployment --all --timeout=300s

log "KServe $KSERVE_VERSION (RawDeployment by default; Serverless per InferenceService annotation)"
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve.yaml"
kubectl -n kserve wait --for=condition=Available deployment --all --timeout=300s
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve-cluster-resources.yaml"
# The storage initializer runs inside every predictor pod, so it must pass Pod Security "restricted" as well
# (kserve/kserve#5373); this is a no-op where the release already sets it.
kubectl patch clusterstoragecontainer default --type merge -p '{"spec":{"container":{"securityContext":{
  "allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsNonRoot":true,"runAsUser":1000,
  "seccompProfile":{"type":"RuntimeDefault"}}}}}'

log "Kubeflow Pipelines $KFP_VERSION (standalone)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for=condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"
kubectl -n kubeflow wait --for=condition=Available deployment/ml-pipeline --timeout=600s

log "Strimzi $STRIMZI_VERSION (operator in kafka, watching the slipway namespace, restricted pods)"
kubectl create namespace kafka --dry-run=client -o yaml | kubectl apply -f -
curl -fsSL "https://github.com/strimzi/strimzi-kafka-operator/releases/download/$STRIMZI_VERSION/strimzi-cluster-operator-$STRIMZI_VERSION.yaml" \
  | sed 's/namespace: myproject/namespace: kafka/' \
  | kubectl -n kafka apply -f -
# Watch the slipway namespace (instead of the operator's own) and give every Kafka pod a restricted securityContext.
kubectl -n kafka patch deployment strimzi-cluster-operator --type=strategic -p '{"spec":{"template":{"spec":
  {"containers":[{"name":"strimzi-cluster-operator","env":[
    {"name":"STRIMZI_NAMESPACE","value":"slipway","valueFrom":null},
    {"name":"STRIMZI_POD_SECURITY_PROVIDER_CLASS","value":"restricted"}]}]}}}}'
kubectl -n kafka wait --for=condition=Available deployment/strimzi-cluster-operator --timeout=300s

log "Prometheus Operator CRDs $PROMETHEUS_OPERATOR_VERSION"
kubectl apply --server-side -f "https://github.com/prometheus-operator/prometheus-operator/releases/download/$PROMETHEUS_OPERATOR_VERSION/stripped-down-crds.yaml"

log "Slipway (manifests/overlays/kind)"
kubectl apply -k "$ROOT/manifests/overlays/kind"
# The Strimzi operator manages Kafka in the slipway namespace through these three bindings (Strimzi's documented
# setup for a watched namespace).
for role in strimzi-cluster-operator-namespaced strimzi-cluster-operator-watched strimzi-entity-operator; do
  kubectl -n slipway create rolebinding "$role" --clusterrole="$role" \
    --serviceaccount=kafka:strimzi-cluster-operator --dry-run=client -o yaml | kubectl apply -f -
done
kubectl -n slipway rollout status statefulset/minio --timeout=300s
kubectl -n slipway wait --for=condition=complete job/minio-bucket-init --timeout=300s
log "done: make kind-smoke runs the pipeline and sends a prediction"
