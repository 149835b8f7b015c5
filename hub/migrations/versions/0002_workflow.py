"""Incidents, work orders, users, audit, hotspots, notifications, change feed.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _seq() -> sa.Column[int]:
    """The autoincrement key of a table (BIGINT, INTEGER on SQLite)."""
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _audit() -> None:
    """The ``audit`` table and its indexes."""
    op.create_table(
        "audit",
        _seq(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_target", "audit", ["target", "seq"], unique=False)


def _changes() -> None:
    """The ``changes`` table and its indexes."""
    op.create_table(
        "changes",
        _seq(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )


def _hotspots() -> None:
    """The ``hotspots`` table and its indexes."""
    op.create_table(
        "hotspots",
        _seq(),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("place_key", sa.String(length=300), nullable=False),
        sa.Column("grid_id", sa.String(length=128), nullable=True),
        sa.Column("place_name", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("prev_count", sa.Integer(), nullable=False),
        sa.Column("trend", sa.String(length=16), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("type", "place_key", name="uq_hotspots_type_place"),
    )
    op.create_index("ix_hotspots_last", "hotspots", ["last_at"], unique=False)


def _incident_keys() -> None:
    """The ``incident_keys`` table and its indexes."""
    op.create_table(
        "incident_keys",
        sa.Column("key", sa.String(length=340), nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def _incident_timeline() -> None:
    """The ``incident_timeline`` table and its indexes."""
    op.create_table(
        "incident_timeline",
        _seq(),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ix_timeline_incident", "incident_timeline", ["incident_id", "seq"], unique=False
    )


def _incidents() -> None:
    """The ``incidents`` table and its indexes."""
    op.create_table(
        "incidents",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("grid_id", sa.String(length=128), nullable=True),
        sa.Column("community_id", sa.String(length=128), nullable=True),
        sa.Column("town_id", sa.String(length=128), nullable=True),
        sa.Column("district_id", sa.String(length=128), nullable=True),
        sa.Column("placed", sa.Boolean(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("zone", sa.String(length=128), nullable=True),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(length=64), nullable=True),
        sa.Column("ack_escalated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_incidents_family_last", "incidents", ["family", "last_at"], unique=False)
    op.create_index("ix_incidents_grid_seq", "incidents", ["grid_id", "seq"], unique=False)
    op.create_index(
        "ix_incidents_community_seq", "incidents", ["community_id", "seq"], unique=False
    )
    op.create_index("ix_incidents_town_seq", "incidents", ["town_id", "seq"], unique=False)
    op.create_index("ix_incidents_pinned", "incidents", ["pinned", "ack_due_at"], unique=False)
    op.create_index("ix_incidents_state_seq", "incidents", ["state", "seq"], unique=False)
    op.create_index(
        "ix_incidents_type_grid", "incidents", ["type", "grid_id", "first_at"], unique=False
    )


def _leases() -> None:
    """The ``leases`` table and its indexes."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _notifications() -> None:
    """The ``notifications`` table and its indexes."""
    op.create_table(
        "notifications",
        _seq(),
        sa.Column("work_order_id", sa.String(length=40), nullable=True),
        sa.Column("incident_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_at"], unique=False)


def _sessions() -> None:
    """The ``sessions`` table and its indexes."""
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )


def _suppressions() -> None:
    """The ``suppressions`` table and its indexes."""
    op.create_table(
        "suppressions",
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_key"),
    )


def _uploads() -> None:
    """The ``uploads`` table and its indexes."""
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("work_order_id", sa.String(length=40), nullable=True),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _users() -> None:
    """The ``users`` table and its indexes."""
    op.create_table(
        "users",
        _seq(),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("scope_id", sa.String(length=128), nullable=True),
        sa.Column("board", sa.String(length=32), nullable=True),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def _wo_transitions() -> None:
    """The ``wo_transitions`` table and its indexes."""
    op.create_table(
        "wo_transitions",
        _seq(),
        sa.Column("work_order_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("photos", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_transitions_wo", "wo_transitions", ["work_order_id", "seq"], unique=False)


def _work_orders() -> None:
    """The ``work_orders`` table and its indexes."""
    op.create_table(
        "work_orders",
        _seq(),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("board", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("grid_id", sa.String(length=128), nullable=True),
        sa.Column("community_id", sa.String(length=128), nullable=True),
        sa.Column("town_id", sa.String(length=128), nullable=True),
        sa.Column("district_id", sa.String(length=128), nullable=True),
        sa.Column("screening", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sa.String(length=64), nullable=True),
        sa.Column("assignee_name", sa.String(length=128), nullable=True),
        sa.Column("handler_id", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handle_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("reassigns", sa.Integer(), nullable=False),
        sa.Column("reworks", sa.Integer(), nullable=False),
        sa.Column("reopens", sa.Integer(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("accept_s", sa.Float(), nullable=True),
        sa.Column("close_s", sa.Float(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("incident_id"),
    )
    op.create_index("ix_wo_accept_due", "work_orders", ["state", "accept_due_at"], unique=False)
    op.create_index("ix_wo_assignee_seq", "work_orders", ["assignee_id", "seq"], unique=False)
    op.create_index("ix_wo_board_seq", "work_orders", ["board", "seq"], unique=False)
    op.create_index("ix_wo_grid_seq", "work_orders", ["grid_id", "seq"], unique=False)
    op.create_index("ix_wo_community_seq", "work_orders", ["community_id", "seq"], unique=False)
    op.create_index("ix_wo_town_seq", "work_orders", ["town_id", "seq"], unique=False)
    op.create_index("ix_wo_handle_due", "work_orders", ["state", "handle_due_at"], unique=False)
    op.create_index("ix_wo_rate_due", "work_orders", ["state", "rate_due_at"], unique=False)
    op.create_index("ix_wo_source", "work_orders", ["source_key", "state"], unique=False)
    op.create_index("ix_wo_state_seq", "work_orders", ["state", "seq"], unique=False)


def _events_incident() -> None:
    """Events point to their incident; indexes for the incident and severity lists."""
    op.add_column("events", sa.Column("incident_id", sa.String(length=40), nullable=True))
    op.create_index("ix_events_incident_seq", "events", ["incident_id", "seq"], unique=False)
    op.create_index("ix_events_severity_seq", "events", ["severity", "seq"], unique=False)


def upgrade() -> None:
    _audit()
    _changes()
    _hotspots()
    _incident_keys()
    _incident_timeline()
    _incidents()
    _leases()
    _notifications()
    _sessions()
    _suppressions()
    _uploads()
    _users()
    _wo_transitions()
    _work_orders()
    _events_incident()


def downgrade() -> None:
    op.drop_index("ix_events_severity_seq", table_name="events")
    op.drop_index("ix_events_incident_seq", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("incident_id")
    op.drop_index("ix_wo_state_seq", table_name="work_orders")
    op.drop_index("ix_wo_source", table_name="work_orders")
    op.drop_index("ix_wo_rate_due", table_name="work_orders")
    op.drop_index("ix_wo_handle_due", table_name="work_orders")
    op.drop_index("ix_wo_grid_seq", table_name="work_orders")
    op.drop_index("ix_wo_board_seq", table_name="work_orders")
    op.drop_index("ix_wo_assignee_seq", table_name="work_orders")
    op.drop_index("ix_wo_accept_due", table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_index("ix_transitions_wo", table_name="wo_transitions")
    op.drop_table("wo_transitions")
    op.drop_table("users")
    op.drop_table("uploads")
    op.drop_table("suppressions")
    op.drop_table("sessions")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("leases")
    op.drop_index("ix_incidents_type_grid", table_name="incidents")
    op.drop_index("ix_incidents_state_seq", table_name="incidents")
    op.drop_index("ix_incidents_pinned", table_name="incidents")
    op.drop_index("ix_incidents_grid_seq", table_name="incidents")
    op.drop_index("ix_incidents_family_last", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_timeline_incident", table_name="incident_timeline")
    op.drop_table("incident_timeline")
    op.drop_table("incident_keys")
    op.drop_index("ix_hotspots_last", table_name="hotspots")
    op.drop_table("hotspots")
    op.drop_table("changes")
    op.drop_index("ix_audit_target", table_name="audit")
    op.drop_table("audit")
