"""Download the public datasets the test suite reads into ../shared/datasets (beside the repository), checking
every file's sha256. CI runs it before `make test`; locally the folder is usually there already.

    python scripts/fetch_datasets.py [--dest ../shared/datasets]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import urllib.request
from pathlib import Path

RAW = "https://raw.githubusercontent.com"
NAB_FILE = "machine_temperature_system_failure.csv"
# relative path -> (source URL, sha256 of the file as stored)
FILES: dict[str, tuple[str, str]] = {
    "telco-churn/Telco-Customer-Churn.csv": (
        f"{RAW}/IBM/telco-customer-churn-on-icp4d/master/data/Telco-Customer-Churn.csv",
        "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91",
    ),
    "california-housing/housing.csv": (
        f"{RAW}/ageron/handson-ml2/master/datasets/housing/housing.csv",
        "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e",
    ),
    f"nab-iot/{NAB_FILE}": (
        f"{RAW}/numenta/NAB/master/data/realKnownCause/{NAB_FILE}",
        "92bf5b87fc7f9bba8ca0b7ec63ccaac8cb4a1371a258e8c29a10ae9c018d82a4",
    ),
    "nab-iot/LICENSE.txt": (
        f"{RAW}/numenta/NAB/master/LICENSE.txt",
        "0a0b4d0b10cb1f7ed9ab2993ef93defc03447e6eba9daca1315dd32dae4877e3",
    ),
}
# The labelled windows of that one series, cut from NAB's labels/combined_windows.json.
WINDOWS = (
    "nab-iot/anomaly_windows.json",
    f"{RAW}/numenta/NAB/master/labels/combined_windows.json",
    "89a99862b5e3f79bbf5b23d365781ce3aa6d6a104513c48f4b8070462a8cc089",
)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # fixed https URLs above
        data: bytes = response.read()
    return data


def _write_checked(path: Path, data: bytes, sha256: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"error: {path.name}: sha256 {digest}, expected {sha256}; the source changed upstream")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def windows_file(combined: dict[str, list[list[str]]]) -> bytes:
    """anomaly_windows.json: the series' windows from NAB's combined_windows.json, as stored in the datasets."""
    return json.dumps({NAB_FILE: combined[f"realKnownCause/{NAB_FILE}"]}, indent=1).encode()


def fetch(dest: Path) -> list[Path]:
    """Fetch every missing file into `dest`; files already present are checked, not downloaded again."""
    written = []
    for rel, (url, sha256) in FILES.items():
        path = dest / rel
        if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            continue
        _write_checked(path, _get(url), sha256)
        written.append(path)
    rel, url, sha256 = WINDOWS
    path = dest / rel
    if not (path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256):
        _write_checked(path, windows_file(json.loads(_get(url))), sha256)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    parser.add_argument("--dest", type=Path, default=default)
    args = parser.parse_args(argv)
    for path in fetch(args.dest):
        print(f"fetched {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
