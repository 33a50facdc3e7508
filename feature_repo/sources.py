"""Offline source: one parquet file written by slipway.features.store.write_feature_source.

The relative path is resolved by Feast against the repo directory (RepoConfig.repo_path).
"""

from feast import FileSource
from feast.data_format import ParquetFormat

churn_features_source = FileSource(
    name="churn_features_source",
    path="data/churn_features.parquet",
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)
