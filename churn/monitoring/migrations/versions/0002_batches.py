"""File batches: the `batches` table and `predictions.batch_id` (rows hidden until their batch commits).

Revision ID: 0002_batches
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_batches"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

COMMITTED = sa.text("status = 'committed'")
IN_A_BATCH = sa.text("batch_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("committed_at", sa.DateTime(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batches_status", "batches", ["status"])
    # one committed batch per (file, model)
    op.create_index(
        "ux_batches_file_model",
        "batches",
        ["sha256", "model_name", "model_version"],
        unique=True,
        sqlite_where=COMMITTED,
        postgresql_where=COMMITTED,
    )
    op.add_column("predictions", sa.Column("batch_id", sa.Integer(), nullable=True))
    op.create_index(
        "ix_predictions_batch_id",
        "predictions",
        ["batch_id"],
        sqlite_where=IN_A_BATCH,
        postgresql_where=IN_A_BATCH,
    )


def downgrade() -> None:
    op.drop_index("ix_predictions_batch_id", table_name="predictions")
    op.drop_column("predictions", "batch_id")
    op.drop_table("batches")
