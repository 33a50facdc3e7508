"""The model's feature set: all 19 Telco features."""

from feast import FeatureService
from features import customer_account, customer_demographics, customer_services

churn_v1 = FeatureService(
    name="churn_v1",
    features=[customer_demographics, customer_services, customer_account],
    description="All 19 IBM Telco churn features for churn model v1.",
)
