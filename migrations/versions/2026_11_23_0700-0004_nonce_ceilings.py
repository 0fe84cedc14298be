"""nonce ceilings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('nonce_ceilings',
    sa.Column('scope', sa.String(length=128), nullable=False),
    sa.Column('ceiling', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_nonce_ceilings'))
    )


def downgrade() -> None:
    op.drop_table('nonce_ceilings')
