"""site_bridge_status: the last known state of each site broker's bridge to the cloud

Revision ID: a3c5e7f9b1d2
Revises: a4c1d7e9b2f0
Create Date: 2026-12-07 22:45:00.000000

One row per (firm, site) whose site broker bridges to the cloud: online or not and since
when, from the retained ``renkei/bridge/v1/{firm}/{site}/state`` (the disruption watcher,
renkei/cloud/disruption/bridge.py). A new table: downgrade drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a3c5e7f9b1d2"
down_revision = "a4c1d7e9b2f0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_bridge_status",
        sa.Column("firm_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("firm_id", "site_id"),
    )


def downgrade() -> None:
    op.drop_table("site_bridge_status")
