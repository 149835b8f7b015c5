"""Database tables of the hub (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
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
)
Index("ix_events_type_seq", events.c.type, events.c.seq)
Index("ix_events_node_seq", events.c.node_id, events.c.seq)
Index("ix_events_incident_key", events.c.incident_key)
Index("ix_events_occurred_at", events.c.occurred_at)
Index("ix_events_grid_seq", events.c.grid_id, events.c.seq)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
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
