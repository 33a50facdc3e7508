"""Compile every pipeline against one component image and upload it to Kubeflow Pipelines as a new version.

    python scripts/upload_pipelines.py --image ghcr.io/OWNER/slipway:1.2.0 --version 1.2.0 --host http://127.0.0.1:8888

Without --host it only compiles (and loads back) the pipelines into --out, which CI does on every change.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("upload_pipelines")


def compile_with_image(image: str, out: Path) -> dict[str, Path]:
    """Compile every registered pipeline with `image` as the component image (set before components import)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    components = importlib.import_module("components")
    loaded = [m for m in sys.modules if m.startswith(("components.", "pipelines"))]
    if loaded:
        raise RuntimeError(f"set the image before any component module is imported; already imported: {loaded}")
    vars(components)["SLIPWAY_IMAGE"] = image  # read by every component module at its import
    compile_all = importlib.import_module("pipelines.compile").compile_all
    written: dict[str, Path] = compile_all(out)
    for name, path in written.items():
        if image not in path.read_text():
            raise RuntimeError(f"{name}: compiled pipeline does not reference {image}")
    return written


def upload(host: str, compiled: dict[str, Path], version: str, namespace: str | None) -> list[Any]:
    """Create each pipeline on first upload, then add `version` as a new pipeline version."""
    import kfp

    client = kfp.Client(host=host, namespace=namespace)
    results = []
    for name, path in compiled.items():
        pipeline_id = client.get_pipeline_id(name)
        if pipeline_id is None:
            results.append(client.upload_pipeline(str(path), pipeline_name=name, description=f"Slipway {name}"))
            pipeline_id = client.get_pipeline_id(name)
        results.append(
            client.upload_pipeline_version(
                str(path), pipeline_version_name=f"{name}-{version}", pipeline_id=pipeline_id
            )
        )
        logger.info("uploaded %s version %s", name, version)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="component image, e.g. ghcr.io/OWNER/slipway:1.2.0")
    parser.add_argument("--version", required=True, help="pipeline version label, e.g. the release tag")
    parser.add_argument("--host", default="", help="KFP API endpoint; empty means compile only")
    parser.add_argument("--namespace", default=None, help="KFP namespace (multi-user installs)")
    parser.add_argument("--out", type=Path, default=Path("build/pipelines"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    compiled = compile_with_image(args.image, args.out)
    for name, path in compiled.items():
        print(f"{name}: {path}")
    if args.host:
        upload(args.host, compiled, args.version, args.namespace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
