"""gateway_enrolment: credential expiry and rotation slots

Revision ID: a4c1d7e9b2f0
Revises: eaa2e47cb0ed
Create Date: 2026-12-07 22:40:00.000000

A gateway's MQTT credentials now expire (``credential_expires_at``) and rotate with
overlap between two user slots (``credential_slot`` the current one, ``retiring_slot``
the one still valid until the rotation is finished; ``token_rotates``: the outstanding
token creates the other slot instead of replacing the gateway's users)
(renkei/cloud/gateway_identity.py). Downgrade drops the four columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a4c1d7e9b2f0"
down_revision = "eaa2e47cb0ed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_enrolment") as batch:
        batch.add_column(sa.Column("credential_expires_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("credential_slot", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("retiring_slot", sa.Integer()))
        batch.add_column(
            sa.Column("token_rotates", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_enrolment") as batch:
        batch.drop_column("token_rotates")
        batch.drop_column("retiring_slot")
        batch.drop_column("credential_slot")
        batch.drop_column("credential_expires_at")
