"""Alembic's environment for the prediction log: migrates the connection `migrations` hands it."""

from __future__ import annotations

from alembic import context

from churn.monitoring import tables
from churn.monitoring.migrations import VERSION_TABLE

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=tables.metadata,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
