"""The IBM Telco churn dataset: load, download (sha256-verified) and a synthetic stand-in for tests."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from slipway.data.churn_schema import CATEGORICAL_FEATURES, ID_COLUMN, RAW_COLUMNS, TARGET_COLUMN
from slipway.errors import IntegrityError
from slipway.storage import sha256_file

logger = logging.getLogger(__name__)

TELCO_URL = "https://raw.githubusercontent.com/IBM/telco-customer-churn-on-icp4d/master/data/Telco-Customer-Churn.csv"
TELCO_FILENAME = "Telco-Customer-Churn.csv"
TELCO_SHA256 = "16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91"


def load_churn_csv(path: str | Path) -> pd.DataFrame:
    """Read the Telco CSV with every column as str; blanks stay "" so cleansing decides what they mean."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def download_churn(dest: Path, url: str = TELCO_URL, sha256: str | None = TELCO_SHA256) -> Path:
    """Download the Telco CSV to `dest` (a file, or a directory to put it in) and verify its sha256.

    An existing file with the right digest is reused. The download goes to a temp file first so a
    failed or tampered transfer never leaves a half-written file at `dest`.
    """
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / TELCO_FILENAME
    if dest.exists() and sha256 is not None and sha256_file(dest) == sha256:
        logger.info("churn dataset already present at %s", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=".download-", delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            logger.info("downloading %s", url)
            with urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, tmp)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    actual = sha256_file(tmp_path)
    if sha256 is not None and actual != sha256:
        tmp_path.unlink(missing_ok=True)
        raise IntegrityError(
            f"sha256 of {url} is {actual}, expected {sha256}; the file changed upstream or the transfer was corrupted"
        )
    tmp_path.replace(dest)
    return dest


def _choice(rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), size=n, p=p)


def generate_synthetic_churn(n_rows: int = 2000, seed: int = 42) -> pd.DataFrame:
    """A deterministic Telco-like frame (all columns str, like the CSV) with a learnable churn signal."""
    rng = np.random.default_rng(seed)
    n = n_rows
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    suffixes = ["".join(row) for row in rng.choice(letters, size=(n, 5))]
    # The index prefix guarantees unique ids whatever the random suffix.
    ids = [f"{i:04d}-{s}" for i, s in enumerate(suffixes)]

    gender = _choice(rng, CATEGORICAL_FEATURES["gender"], n)
    senior = (rng.random(n) < 0.16).astype(int)
    partner = _choice(rng, ["No", "Yes"], n, [0.52, 0.48])
    dependents = _choice(rng, ["No", "Yes"], n, [0.7, 0.3])
    contract = _choice(rng, CATEGORICAL_FEATURES["Contract"], n, [0.55, 0.21, 0.24])
    # Longer contracts go with longer tenure, as in the real data.
    base_tenure = np.where(contract == "Month-to-month", 18, np.where(contract == "One year", 42, 57))
    tenure = np.clip(np.round(rng.normal(base_tenure, 18)), 1, 72).astype(int)
    tenure[rng.random(n) < 0.005] = 0

    phone = _choice(rng, ["No", "Yes"], n, [0.1, 0.9])
    multiple = np.where(phone == "No", "No phone service", _choice(rng, ["No", "Yes"], n))
    internet = _choice(rng, CATEGORICAL_FEATURES["InternetService"], n, [0.34, 0.44, 0.22])
    addons = {}
    for col in ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies"):
        addons[col] = np.where(internet == "No", "No internet service", _choice(rng, ["No", "Yes"], n, [0.6, 0.4]))
    paperless = _choice(rng, ["No", "Yes"], n, [0.41, 0.59])
    payment = _choice(rng, CATEGORICAL_FEATURES["PaymentMethod"], n, [0.22, 0.22, 0.34, 0.22])

    monthly = 20.0 + 5.0 * (phone == "Yes") + 5.0 * (multiple == "Yes")
    monthly = monthly + np.select([internet == "DSL", internet == "Fiber optic"], [25.0, 50.0], 0.0)
    monthly = monthly + sum(5.0 * (addons[c] == "Yes") for c in addons) + rng.normal(0, 3, n)
    monthly = np.round(np.clip(monthly, 18.25, 120.0), 2)
    total = np.round(monthly * tenure * rng.uniform(0.95, 1.05, n), 2)

    logit = (
        1.3 * (contract == "Month-to-month")
        - 0.8 * (contract == "Two year")
        + 0.9 * (internet == "Fiber optic")
        + 0.7 * (payment == "Electronic check")
        - 0.045 * tenure
        + 0.3 * senior
        + 0.3 * (paperless == "Yes")
        - 0.4 * (addons["TechSupport"] == "Yes")
        - 0.3 * (addons["OnlineSecurity"] == "Yes")
    )
    # Pick the intercept by bisection so the expected churn rate is ~26%, as in the real file.
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() > 0.265:
            hi = mid
        else:
            lo = mid
    prob = 1 / (1 + np.exp(-(logit + lo)))
    churn = np.where(rng.random(n) < prob, "Yes", "No")

    frame = pd.DataFrame(
        {
            ID_COLUMN: ids,
            "gender": gender,
            "SeniorCitizen": senior.astype(str),
            "Partner": partner,
            "Dependents": dependents,
            "tenure": tenure.astype(str),
            "PhoneService": phone,
            "MultipleLines": multiple,
            "InternetService": internet,
            **addons,
            "Contract": contract,
            "PaperlessBilling": paperless,
            "PaymentMethod": payment,
            "MonthlyCharges": [str(float(v)) for v in monthly],
            # The real file leaves TotalCharges blank for brand-new customers; mimic that quirk.
            "TotalCharges": ["" if t == 0 else str(float(v)) for t, v in zip(tenure, total, strict=True)],
            TARGET_COLUMN: churn,
        }
    )
    return frame[RAW_COLUMNS].astype(str)
