"""The prediction log's schema revisions, oldest first (Alembic loads them by their `down_revision`)."""
