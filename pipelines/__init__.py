"""KFP pipelines, one module each, plus `compile.py`."""
