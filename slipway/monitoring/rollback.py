"""Roll a model back: the registry restores the previous production version, and on a cluster the
InferenceService is pointed at that version's folder (storageUri) with all traffic, through the Kubernetes API.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from slipway.errors import RegistryError

logger = logging.getLogger(__name__)

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
KSERVE_PLURAL = "inferenceservices"
VERSION_LABEL = "slipway.io/model-version"


def storage_uri_for(prefix: str, model: str, version: int) -> str:
    """`<prefix>/<model>/v<N>`: the registry folder KServe's storage initializer downloads."""
    return f"{prefix.rstrip('/')}/{model}/v{version}"


def patch_inference_service_version(
    api: Any, name: str, namespace: str, storage_uri: str, version: int
) -> dict[str, Any]:
    """Point InferenceService `name` at `storage_uri` with 100 % of the traffic (no canary) and label the version.

    Works for `predictor.model.storageUri` and for custom containers carrying a STORAGE_URI variable. `api` is a
    `kubernetes.client.CustomObjectsApi`. Returns the patch body that was sent.
    """
    try:
        isvc = api.get_namespaced_custom_object(KSERVE_GROUP, KSERVE_VERSION, namespace, KSERVE_PLURAL, name)
    except Exception as e:  # ApiException, transport errors
        raise RegistryError(f"cannot read InferenceService {namespace}/{name}: {e}; check it exists") from e
    predictor_in = isvc.get("spec", {}).get("predictor", {})
    predictor: dict[str, Any] = {"canaryTrafficPercent": None}  # merge patch: null removes the canary split
    if "model" in predictor_in:
        predictor["model"] = {"storageUri": storage_uri}
    else:
        containers = copy.deepcopy(predictor_in.get("containers") or [])
        if not containers:
            raise RegistryError(f"InferenceService {namespace}/{name} has neither predictor.model nor containers")
        env = containers[0].setdefault("env", [])
        for var in env:
            if var.get("name") == "STORAGE_URI":
                var["value"] = storage_uri
                break
        else:
            env.append({"name": "STORAGE_URI", "value": storage_uri})
        predictor["containers"] = containers  # a merge patch replaces lists whole
    body = {"metadata": {"labels": {VERSION_LABEL: str(version)}}, "spec": {"predictor": predictor}}
    try:
        api.patch_namespaced_custom_object(KSERVE_GROUP, KSERVE_VERSION, namespace, KSERVE_PLURAL, name, body)
    except Exception as e:
        raise RegistryError(
            f"cannot patch InferenceService {namespace}/{name}: {e}; check the service account may patch "
            "inferenceservices"
        ) from e
    logger.info("InferenceService %s/%s now serves %s (v%d)", namespace, name, storage_uri, version)
    return body


def kubernetes_custom_objects_api() -> Any:
    """A CustomObjectsApi from the in-cluster config, else the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()
