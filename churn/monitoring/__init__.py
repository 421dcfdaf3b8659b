"""Production monitoring: prediction log and drift detection."""
