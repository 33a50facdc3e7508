"""KFP v2 components: thin typed wrappers over the `slipway` library, one module per stage."""

# One image for every component; the CI/CD workflow overrides it per release (SLIPWAY_IMAGE at compile time).
SLIPWAY_IMAGE = "ghcr.io/slipway-mlops/slipway:0.1.0"
