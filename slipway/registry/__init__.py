"""Model registry: versioned, sha256-verified models on an artifact store."""

from slipway.registry.model_registry import (
    ModelRegistry,
    ModelVersion,
    RegistryEvent,
    default_code_version,
    load_verified_model,
    sha256_dataframe,
)

__all__ = [
    "ModelRegistry",
    "ModelVersion",
    "RegistryEvent",
    "default_code_version",
    "load_verified_model",
    "sha256_dataframe",
]
