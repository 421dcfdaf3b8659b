"""Churn MLOps: the library behind the pipeline, the CLI and the app."""

__version__ = "0.1.0"
