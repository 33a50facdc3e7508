"""One error hierarchy. Messages say what went wrong and how to fix it."""


class SlipwayError(Exception):
    """Base class of every error Slipway raises on purpose."""


class ConfigError(SlipwayError):
    """Settings are missing or inconsistent."""


class DataFormatError(SlipwayError):
    """Input bytes could not be recognised or parsed as a supported format."""


class DataValidationError(SlipwayError):
    """Data failed validation as a whole (not row by row: rows go to quarantine)."""


class ReconciliationError(SlipwayError):
    """rows_read != rows_curated + rows_quarantined: a row was lost or counted twice."""


class ArtifactNotFoundError(SlipwayError):
    """A key, model or version is not in the artifact store."""


class IntegrityError(SlipwayError):
    """A file's sha256 does not match the digest recorded for it."""


class RegistryError(SlipwayError):
    """The model registry is inconsistent or a request to it is invalid."""


class FeatureStoreError(SlipwayError):
    """Feast could not apply, materialize or serve the requested features."""


class ServingInputError(SlipwayError):
    """An inference request does not match the model's feature schema."""


class BrokerUnavailableError(SlipwayError):
    """The Kafka-API broker did not answer within the retry budget."""


class StreamStateError(SlipwayError):
    """A stream processor checkpoint is missing, corrupt or belongs to another topic layout."""


class MonitoringError(SlipwayError):
    """A drift check could not run: no reference profile, no traffic in the window, a failed trigger."""


class AlertDeliveryError(MonitoringError):
    """The alert sink did not accept an alert after every retry."""


class ImageDecodeError(DataFormatError):
    """Bytes are not a decodable image, are empty, or exceed the pixel limit (decompression-bomb guard)."""


class RolloutError(SlipwayError):
    """A canary rollout or A/B test could not be started, stepped or analysed."""


class ConnectorError(SlipwayError):
    """A source (file, S3, PostgreSQL, HTTP API, Kafka) could not be read; transient errors were retried."""
