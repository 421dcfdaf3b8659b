"""When each alert was posted to the webhook (`alerts.posted_at`): the cooldown between posts.

Revision ID: 0003_alert_posts
Revises: 0002_batches
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alert_posts"
down_revision = "0002_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("posted_at", sa.DateTime(), nullable=True))
    op.create_index("ix_alerts_posted_at", "alerts", ["posted_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_posted_at", table_name="alerts")
    op.drop_column("alerts", "posted_at")
