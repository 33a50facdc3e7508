"""The one entity: a Telco customer, keyed by the source column `customerID`."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customerID"],
    value_type=ValueType.STRING,
    description="A telco customer (IBM Telco churn `customerID`).",
)
