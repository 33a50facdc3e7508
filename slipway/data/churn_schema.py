"""The IBM Telco churn schema: 21 columns, one row per customer, target `Churn` (Yes/No).

Feature names are kept exactly as in the source file everywhere (Feast fields, model inputs, serving
requests), so a user can send a raw row from the CSV to the model server.
"""

from __future__ import annotations

from typing import Any, Literal

ID_COLUMN = "customerID"
TARGET_COLUMN = "Churn"
TIMESTAMP_COLUMN = "event_timestamp"

_YES_NO = ["No", "Yes"]
_INTERNET_ADDON = ["No", "No internet service", "Yes"]

CATEGORICAL_FEATURES: dict[str, list[str]] = {
    "gender": ["Female", "Male"],
    "Partner": _YES_NO,
    "Dependents": _YES_NO,
    "PhoneService": _YES_NO,
    "MultipleLines": ["No", "No phone service", "Yes"],
    "InternetService": ["DSL", "Fiber optic", "No"],
    "OnlineSecurity": _INTERNET_ADDON,
    "OnlineBackup": _INTERNET_ADDON,
    "DeviceProtection": _INTERNET_ADDON,
    "TechSupport": _INTERNET_ADDON,
    "StreamingTV": _INTERNET_ADDON,
    "StreamingMovies": _INTERNET_ADDON,
    "Contract": ["Month-to-month", "One year", "Two year"],
    "PaperlessBilling": _YES_NO,
    "PaymentMethod": [
        "Bank transfer (automatic)",
        "Credit card (automatic)",
        "Electronic check",
        "Mailed check",
    ],
}

# name -> (type, min, max). SeniorCitizen is a 0/1 flag in the source file.
NUMERIC_FEATURES: dict[str, tuple[Literal["integer", "number"], float, float]] = {
    "SeniorCitizen": ("integer", 0, 1),
    "tenure": ("integer", 0, 120),
    "MonthlyCharges": ("number", 0.0, 500.0),
    "TotalCharges": ("number", 0.0, 100_000.0),
}

# Source column order of the CSV.
RAW_COLUMNS: list[str] = [
    ID_COLUMN,
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    TARGET_COLUMN,
]

FEATURE_COLUMNS: list[str] = [c for c in RAW_COLUMNS if c not in (ID_COLUMN, TARGET_COLUMN)]


def feature_schema() -> dict[str, Any]:
    """The model's input contract, stored with every model version and enforced by the server."""
    features: list[dict[str, Any]] = []
    for name in FEATURE_COLUMNS:
        if name in CATEGORICAL_FEATURES:
            features.append({"name": name, "type": "string", "allowed": CATEGORICAL_FEATURES[name]})
        else:
            kind, lo, hi = NUMERIC_FEATURES[name]
            features.append({"name": name, "type": kind, "min": lo, "max": hi})
    return {"id": ID_COLUMN, "target": TARGET_COLUMN, "features": features}
