"""Progressive delivery: a traffic-splitting router (`router`), metric-gated canaries (`controller`, `backends`),
sticky assignment (`assignment`) and A/B tests with statistics (`ab`). Import from the submodules; this package
imports nothing eagerly, so `slipway.rollout.assignment` stays cheap in every process that routes traffic."""
