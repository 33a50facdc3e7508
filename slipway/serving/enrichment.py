"""Request enrichment from the Feast online store: a row carrying only `customer_id` gets its churn_v1 features.

A row may also carry some feature fields: those override the stored values (e.g. a what-if on `Contract`).
An id with no materialised features is refused with a message naming it (HTTP 400), never scored on defaults.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slipway.errors import FeatureStoreError

logger = logging.getLogger(__name__)

ID_FIELDS = ("customer_id", "customerID")


class UnknownEntityError(FeatureStoreError):
    """Some requested ids have no features in the online store."""


class FeastEnricher:
    """Online lookups of the `churn_v1` feature service, one Feast call per request."""

    def __init__(
        self,
        repo_path: str | Path,
        online_store: str = "sqlite",
        redis_url: str | None = None,
        project: str | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        from slipway.data.churn_schema import FEATURE_COLUMNS
        from slipway.features.store import open_store

        self.store = open_store(Path(repo_path), online_store=online_store, redis_url=redis_url, project=project)
        self.feature_names = list(feature_names or FEATURE_COLUMNS)
        # Resolve the service once: a registry read per request would cost more than the lookup itself.
        from slipway.features.store import FEATURE_SERVICE

        try:
            self.service = self.store.get_feature_service(FEATURE_SERVICE)
        except Exception as e:
            raise FeatureStoreError(
                f"feature service {FEATURE_SERVICE!r} is not registered in {repo_path}: run feast apply first ({e})"
            ) from e

    @staticmethod
    def entity_id(row: Any) -> str | None:
        """The id of a row that asks for enrichment, else None."""
        if not isinstance(row, dict):
            return None
        for key in ID_FIELDS:
            if key in row:
                return str(row[key])
        return None

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Features per id; ids without materialised features are absent."""
        from slipway.data.churn_schema import ID_COLUMN

        try:
            response = self.store.get_online_features(
                features=self.service, entity_rows=[{ID_COLUMN: i} for i in ids], full_feature_names=False
            ).to_dict()
        except Exception as e:
            raise FeatureStoreError(f"online feature lookup failed: {e}") from e
        found: dict[str, dict[str, Any]] = {}
        for i, entity in enumerate(response[ID_COLUMN]):
            values = {name: response[name][i] for name in self.feature_names if name in response}
            if all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values.values()) and len(
                values
            ) == len(self.feature_names):
                found[str(entity)] = values
        return found

    def enrich(self, rows: Sequence[Any]) -> list[Any]:
        """Rows with an id replaced by stored features merged with the fields given; other rows unchanged."""
        ids = [self.entity_id(r) for r in rows]
        wanted = sorted({i for i in ids if i is not None})
        if not wanted:
            return list(rows)
        found = self.lookup(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise UnknownEntityError(
                f"no online features for customer_id {missing[:10]}"
                + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
                + ": the customer is unknown or its features are not materialised; send the feature fields instead"
            )
        out: list[Any] = []
        for row, entity in zip(rows, ids, strict=True):
            if entity is None:
                out.append(row)
                continue
            given = {k: v for k, v in row.items() if k not in ID_FIELDS}
            out.append({**found[entity], **given})
        return out
