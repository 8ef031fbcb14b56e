"""machine.mounted_mold_id: the mold mounted on a machine (OEE ideal cycle time)

Revision ID: d4a8c2e6f1b9
Revises: b7d1e5a9c3f2
Create Date: 2026-12-07 20:20:00.000000

Nullable (no mold mounted, the state of every existing machine), unique (a mold is on at
most one machine), ``ON DELETE SET NULL`` (deleting a mold unmounts it). That the mold
belongs to the machine's firm is checked by the API (the registry's only writer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d4a8c2e6f1b9"
down_revision = "b7d1e5a9c3f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mounted_mold_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_machine_mounted_mold_id", ["mounted_mold_id"])
        batch_op.create_foreign_key(
            "fk_machine_mounted_mold_id_mold",
            "mold",
            ["mounted_mold_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("machine", schema=None) as batch_op:
        batch_op.drop_constraint("fk_machine_mounted_mold_id_mold", type_="foreignkey")
        batch_op.drop_constraint("uq_machine_mounted_mold_id", type_="unique")
        batch_op.drop_column("mounted_mold_id")
