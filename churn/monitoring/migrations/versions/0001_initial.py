"""The prediction log as it was before file batches: predictions, outcomes, alerts.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-01

Frozen: the columns and indexes below are those the log had then, spelled out, not read from
`tables` (which describes the head). The drift grid-key indexes use the exact SQL text of
`tables.grid_key` on each dialect, so the database matches the queries' expressions to them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

#: The 19 features in the log's column order (type: c = text, i = whole number, f = float).
FEATURES = (
    ("gender", "c"), ("SeniorCitizen", "i"), ("Partner", "c"), ("Dependents", "c"), ("tenure", "i"),
    ("PhoneService", "c"), ("MultipleLines", "c"), ("InternetService", "c"), ("OnlineSecurity", "c"),
    ("OnlineBackup", "c"), ("DeviceProtection", "c"), ("TechSupport", "c"), ("StreamingTV", "c"),
    ("StreamingMovies", "c"), ("Contract", "c"), ("PaperlessBilling", "c"), ("PaymentMethod", "c"),
    ("MonthlyCharges", "f"), ("TotalCharges", "f"),
)  # fmt: skip
#: Columns counted on a drift grid by key floor(value * scale + 0.5), indexed by (key, column).
GRID = (("MonthlyCharges", 100), ("TotalCharges", 1), ("probability", 10_000))


def _feature(name: str, kind: str) -> sa.Column:
    types = {"c": sa.String(length=32), "i": sa.Integer(), "f": sa.Float()}
    return sa.Column(name, types[kind], nullable=name == "TotalCharges")


def grid_key(column: str, scale: int, dialect: sa.engine.Dialect) -> sa.TextClause:
    """floor(value * scale + 0.5) as a whole number, in the words `tables._FloorInt` uses."""
    shifted = dialect.identifier_preparer.quote(column) + (f" * {scale}" if scale != 1 else "") + " + 0.5"
    if dialect.name == "sqlite":  # values are never negative: truncation is floor
        return sa.text(f"CAST({shifted} AS INTEGER)")
    return sa.text(f"CAST(FLOOR({shifted}) AS BIGINT)")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("window", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("churned", sa.Boolean(), nullable=False),
        sa.Column("outcome_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outcomes_customer_id", "outcomes", ["customer_id"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=200), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("email_source", sa.String(length=200), nullable=True),
        *(_feature(name, kind) for name, kind in FEATURES),
        sa.PrimaryKeyConstraint("id"),
    )
    indexed = ["created_at", "customer_id"] + [name for name, kind in FEATURES if kind != "f"]
    for name in indexed:
        op.create_index(f"ix_predictions_{name}", "predictions", [name])
    dialect = op.get_bind().dialect
    for name, scale in GRID:
        op.create_index(f"ix_predictions_{name}_grid", "predictions", [grid_key(name, scale, dialect), name])


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("outcomes")
    op.drop_table("alerts")
