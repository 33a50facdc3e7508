"""Deploy component: render the KServe InferenceService (with optional canary) for a registered version."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components import SLIPWAY_IMAGE


@dsl.component(base_image=SLIPWAY_IMAGE, install_kfp_package=False)
def render_inference_service(
    model_name: str,
    version: int,
    storage_uri_prefix: str,
    image: str,
    namespace: str,
    canary_traffic_percent: int,
    manifest: Output[Artifact],
) -> None:
    """Write the InferenceService YAML whose storageUri points at the registered version on S3."""
    from slipway.deploy.inference_service import build_inference_service, to_yaml

    storage_uri = f"{storage_uri_prefix.rstrip('/')}/{model_name}/v{version}"
    isvc = build_inference_service(
        model_name,
        storage_uri,
        image,
        namespace=namespace,
        canary_traffic_percent=canary_traffic_percent or None,
    )
    with open(manifest.path, "w") as fh:
        fh.write(to_yaml(isvc))
    manifest.metadata.update({"storage_uri": storage_uri, "canary_traffic_percent": canary_traffic_percent})
