"""Event ids unique per node; user tokens carry their issue time; incidents how they were placed;
work orders a citizen's rating code.

An event id is the idempotency key of one node's event: two nodes may use the same id
without one hiding the other, so the unique key becomes (node_id, id). A user's bearer
token expires ``auth.token_ttl_days`` after ``token_issued_at``.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# names the unnamed unique constraint of 0001 so that batch mode (SQLite) can drop it
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("events", recreate="always", naming_convention=_NAMING) as batch:
            batch.drop_constraint("uq_events_id", type_="unique")
            batch.create_unique_constraint("uq_events_node_id", ["node_id", "id"])
    else:
        op.drop_constraint("events_id_key", "events", type_="unique")
        op.create_unique_constraint("uq_events_node_id", "events", ["node_id", "id"])
    op.create_index("ix_events_id", "events", ["id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_issued_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("place_method", sa.String(16), nullable=True))
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("rating_code", sa.String(24), nullable=True))
    op.create_index("ix_work_orders_rating_code", "work_orders", ["rating_code"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_work_orders_rating_code", "work_orders")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("rating_code")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("place_method")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_issued_at")
    op.drop_index("ix_events_id", "events")
    with op.batch_alter_table("events", recreate="always") as batch:
        batch.drop_constraint("uq_events_node_id", type_="unique")
        batch.create_unique_constraint("uq_events_id", ["id"])
