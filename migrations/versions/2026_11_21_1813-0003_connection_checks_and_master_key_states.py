"""connection checks and master key states

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 18:13:52.747768
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('vault_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_keys'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('check_status', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('check_detail', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('exchange_permissions', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_column('exchange_permissions')
        batch_op.drop_column('checked_at')
        batch_op.drop_column('check_detail')
        batch_op.drop_column('check_status')

    op.drop_table('vault_keys')
