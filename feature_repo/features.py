"""Feature views over the curated Telco churn data. Field names are exactly the source column names."""

from datetime import timedelta

from entities import customer
from feast import FeatureView, Field
from feast.types import Float64, Int64, String
from sources import churn_features_source

FEATURE_TTL = timedelta(days=365)

customer_demographics = FeatureView(
    name="customer_demographics",
    entities=[customer],
    ttl=FEATURE_TTL,
    schema=[
        Field(name="gender", dtype=String),
        Field(name="SeniorCitizen", dtype=Int64),
        Field(name="Partner", dtype=String),
        Field(name="Dependents", dtype=String),
    ],
    source=churn_features_source,
    online=True,
)

customer_services = FeatureView(
    name="customer_services",
    entities=[customer],
    ttl=FEATURE_TTL,
    schema=[
        Field(name="PhoneService", dtype=String),
        Field(name="MultipleLines", dtype=String),
        Field(name="InternetService", dtype=String),
        Field(name="OnlineSecurity", dtype=String),
        Field(name="OnlineBackup", dtype=String),
        Field(name="DeviceProtection", dtype=String),
        Field(name="TechSupport", dtype=String),
        Field(name="StreamingTV", dtype=String),
        Field(name="StreamingMovies", dtype=String),
    ],
    source=churn_features_source,
    online=True,
)

customer_account = FeatureView(
    name="customer_account",
    entities=[customer],
    ttl=FEATURE_TTL,
    schema=[
        Field(name="tenure", dtype=Int64),
        Field(name="Contract", dtype=String),
        Field(name="PaperlessBilling", dtype=String),
        Field(name="PaymentMethod", dtype=String),
        Field(name="MonthlyCharges", dtype=Float64),
        Field(name="TotalCharges", dtype=Float64),
    ],
    source=churn_features_source,
    online=True,
)
