"""takeover drills: takeover_request.drill and .promoted_to

Revision ID: b7d1e5a9c3f2
Revises: cc8b39fa264f
Create Date: 2026-12-07 19:30:00.000000

A drill request is planned like a real one but never offered (its assignments have the
new status value ``drill``, which needs no schema change: statuses are plain strings).
Existing requests are real requests (``drill`` false).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7d1e5a9c3f2"
down_revision = "cc8b39fa264f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("takeover_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("drill", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("promoted_to", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # drills have no meaning in the older schema: drop them before the columns go
    bind = op.get_bind()
    drills = "SELECT id FROM takeover_request WHERE drill = :yes"
    for table in ("takeover_assignment", "takeover_job"):
        bind.execute(sa.text(f"DELETE FROM {table} WHERE request_id IN ({drills})"), {"yes": True})
    bind.execute(sa.text("DELETE FROM takeover_request WHERE drill = :yes"), {"yes": True})
    with op.batch_alter_table("takeover_request", schema=None) as batch_op:
        batch_op.drop_column("promoted_to")
        batch_op.drop_column("drill")
