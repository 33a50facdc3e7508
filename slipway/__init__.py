"""Slipway: Kubernetes-native MLOps on KFP, Feast, KServe and Evidently."""

__version__ = "0.1.0"
