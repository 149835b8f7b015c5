"""Database tables of the hub (SQLAlchemy Core). Alembic migrations create them.

A change here comes with a new migration in ``hub/migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("incident_key", String(256), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("pipeline", String(64), nullable=False),
    Column("grid_id", String(128)),
    Column("summary", Text, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("clock_skew", Boolean, nullable=False, default=False),
    Column("payload", Text, nullable=False),
    Column("incident_id", String(40)),
    # an id is unique within the node that made it (0003)
    UniqueConstraint("node_id", "id", name="uq_events_node_id"),
)
Index("ix_events_id", events.c.id)
Index("ix_events_type_seq", events.c.type, events.c.seq)
Index("ix_events_node_seq", events.c.node_id, events.c.seq)
Index("ix_events_incident_key", events.c.incident_key)
Index("ix_events_occurred_at", events.c.occurred_at)
Index("ix_events_grid_seq", events.c.grid_id, events.c.seq)
Index("ix_events_severity_seq", events.c.severity, events.c.seq)
Index("ix_events_incident_seq", events.c.incident_id, events.c.seq)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("topic", String(512), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("online", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("evidence_id", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def _seq() -> Column[int]:
    return Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


incidents = Table(
    "incidents",
    metadata,
    _seq(),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("family", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # open · closed · false_alarm
    Column("grid_id", String(128)),
    Column("community_id", String(128)),
    Column("town_id", String(128)),
    Column("district_id", String(128)),
    Column("placed", Boolean, nullable=False),
    Column("place_method", String(16)),  # how it was placed (0003): polygon, address, default …
    Column("lat", Float),
    Column("lon", Float),
    Column("zone", String(128)),
    Column("floor", Integer),
    Column("address", Text),
    Column("summary", Text, nullable=False),
    _ts("first_at", False),
    _ts("last_at", False),
    _ts("created_at", False),
    _ts("updated_at", False),
    Column("event_count", Integer, nullable=False),
    Column("sources", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("suppressed", Boolean, nullable=False),
    Column("pinned", Boolean, nullable=False),
    _ts("ack_due_at"),
    _ts("acked_at"),
    Column("acked_by", String(64)),
    Column("ack_escalated", Boolean, nullable=False),
)
Index("ix_incidents_family_last", incidents.c.family, incidents.c.last_at)
Index("ix_incidents_state_seq", incidents.c.state, incidents.c.seq)
Index("ix_incidents_grid_seq", incidents.c.grid_id, incidents.c.seq)
Index("ix_incidents_community_seq", incidents.c.community_id, incidents.c.seq)
Index("ix_incidents_town_seq", incidents.c.town_id, incidents.c.seq)
Index("ix_incidents_type_grid", incidents.c.type, incidents.c.grid_id, incidents.c.first_at)
Index("ix_incidents_pinned", incidents.c.pinned, incidents.c.ack_due_at)

incident_keys = Table(
    "incident_keys",
    metadata,
    Column("key", String(340), primary_key=True),
    Column("incident_id", String(40), nullable=False),
)

incident_timeline = Table(
    "incident_timeline",
    metadata,
    _seq(),
    Column("incident_id", String(40), nullable=False),
    _ts("at", False),
    Column("kind", String(32), nullable=False),
    Column("event_id", String(64)),
    Column("severity", String(16)),
    Column("text", Text, nullable=False),
)
Index("ix_timeline_incident", incident_timeline.c.incident_id, incident_timeline.c.seq)

work_orders = Table(
    "work_orders",
    metadata,
    _seq(),
    Column("id", String(40), nullable=False, unique=True),
    Column("incident_id", String(40), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("type", String(64), nullable=False),
    Column("board", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("grid_id", String(128)),
    Column("community_id", String(128)),
    Column("town_id", String(128)),
    Column("district_id", String(128)),
    Column("screening", Boolean, nullable=False),
    Column("assignee_id", String(64)),
    Column("assignee_name", String(128)),
    Column("handler_id", String(64)),
    Column("summary", Text, nullable=False),
    Column("source_key", String(400), nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("dispatched_at"),
    _ts("accepted_at"),
    _ts("handled_at"),
    _ts("verified_at"),
    _ts("closed_at"),
    _ts("accept_due_at"),
    _ts("handle_due_at"),
    _ts("rate_due_at"),
    Column("escalations", Integer, nullable=False),
    Column("reassigns", Integer, nullable=False),
    Column("reworks", Integer, nullable=False),
    Column("reopens", Integer, nullable=False),
    Column("rating", Integer),
    Column("rating_code", String(24)),  # the citizen's link to rate it, no account (0003)
    Column("accept_s", Float),
    Column("close_s", Float),
    Column("on_time", Boolean),
    Column("version", Integer, nullable=False),
)
Index("ix_wo_state_seq", work_orders.c.state, work_orders.c.seq)
Index("ix_wo_grid_seq", work_orders.c.grid_id, work_orders.c.seq)
Index("ix_wo_community_seq", work_orders.c.community_id, work_orders.c.seq)
Index("ix_wo_town_seq", work_orders.c.town_id, work_orders.c.seq)
Index("ix_wo_board_seq", work_orders.c.board, work_orders.c.seq)
Index("ix_wo_assignee_seq", work_orders.c.assignee_id, work_orders.c.seq)
Index("ix_wo_accept_due", work_orders.c.state, work_orders.c.accept_due_at)
Index("ix_wo_handle_due", work_orders.c.state, work_orders.c.handle_due_at)
Index("ix_wo_rate_due", work_orders.c.state, work_orders.c.rate_due_at)
Index("ix_wo_source", work_orders.c.source_key, work_orders.c.state)

transitions = Table(
    "wo_transitions",
    metadata,
    _seq(),
    Column("work_order_id", String(40), nullable=False),
    _ts("at", False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=False),
    Column("photos", Text, nullable=False),
    Column("data", Text, nullable=False),
)
Index("ix_work_orders_rating_code", work_orders.c.rating_code, unique=True)
Index("ix_transitions_wo", transitions.c.work_order_id, transitions.c.seq)

hotspots = Table(
    "hotspots",
    metadata,
    _seq(),
    Column("type", String(64), nullable=False),
    Column("place_key", String(300), nullable=False),
    Column("grid_id", String(128)),
    Column("place_name", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("prev_count", Integer, nullable=False),
    Column("trend", String(16), nullable=False),
    _ts("first_at", False),
    _ts("last_at", False),
    _ts("updated_at", False),
    UniqueConstraint("type", "place_key", name="uq_hotspots_type_place"),
)
Index("ix_hotspots_last", hotspots.c.last_at)

users = Table(
    "users",
    metadata,
    _seq(),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("scope_id", String(128)),
    Column("board", String(32)),
    Column("person_id", String(64)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False),
    _ts("created_at", False),
    _ts("token_issued_at"),  # bearer token expiry counts from here (else created_at)
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False),
    _ts("expires_at", False),
)

audit = Table(
    "audit",
    metadata,
    _seq(),
    _ts("at", False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)
Index("ix_audit_target", audit.c.target, audit.c.seq)

suppressions = Table(
    "suppressions",
    metadata,
    Column("source_key", String(400), primary_key=True),
    _ts("until", False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    _ts("created_at", False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    _ts("expires_at", False),
)

changes = Table(
    "changes",
    metadata,
    _seq(),
    _ts("at", False),
    Column("kind", String(32), nullable=False),
    Column("ref_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    _seq(),
    Column("work_order_id", String(40)),
    Column("incident_id", String(40)),
    Column("channel", String(32), nullable=False),
    Column("target", String(256), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending · sent · failed
    Column("attempts", Integer, nullable=False),
    _ts("next_at", False),
    _ts("claimed_until"),
    Column("last_error", Text),
    _ts("created_at", False),
    _ts("sent_at"),
)
Index("ix_notifications_due", notifications.c.status, notifications.c.next_at)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("work_order_id", String(40)),
    Column("content_type", String(64), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("uploaded_by", String(64), nullable=False),
    _ts("created_at", False),
)
