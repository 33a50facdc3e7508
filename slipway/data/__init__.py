"""Datasets, ingestion, validation and cleansing."""
