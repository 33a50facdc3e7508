"""Deterministic traffic assignment: the same key lands in the same variant in every process and on every host."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

BUCKETS = 10_000


def bucket(key: str, salt: str = "slipway") -> float:
    """A stable position in [0, 100) for `key` (sha256, never Python's per-process `hash()`)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % BUCKETS) * 100.0 / BUCKETS


def assign_variant(key: str, weights: Mapping[str, float], salt: str = "slipway") -> str:
    """The variant whose cumulative weight range (in the mapping's order, percent) holds `bucket(key)`.

    Put the canary first: raising its weight from 10 to 25 % only moves users *into* it, so nobody flips back
    and forth between variants during a rollout.
    """
    total = sum(weights.values())
    if not weights or total <= 0:
        raise ValueError("weights must contain at least one variant with a positive weight")
    position = bucket(key, salt) * total / 100.0
    cumulative = 0.0
    last = ""
    for name, weight in weights.items():
        if weight <= 0:
            continue
        cumulative += weight
        last = name
        if position < cumulative:
            return name
    return last
