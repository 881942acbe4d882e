"""Tables the kit owns in every service database: the outbox and the consumer inbox.

They live on their own MetaData so a service's models never collide with them. They
are created by the kit's own Alembic branch (kit/migrations), which `kit.db.migrate`
applies beside every service's migrations; a change to them is a new migration there.
"""

from __future__ import annotations

import zlib

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)

__all__ = [
    "PARTITIONS",
    "create_kit_tables",
    "drop_kit_tables",
    "kit_metadata",
    "outbox",
    "partition_of",
    "processed_events",
]

# Outbox rows are spread over this many partitions by aggregate id. One relay holds a
# partition at a time, which is what keeps events of one aggregate in order while
# several replicas relay in parallel. Changing it re-homes aggregates: only do so
# with an empty backlog.
PARTITIONS = 16

kit_metadata = MetaData()

outbox = Table(
    "outbox",
    kit_metadata,
    # Global write order. SQLite only auto-increments an INTEGER PRIMARY KEY.
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("id", String(36), nullable=False, unique=True),
    Column("type", String(200), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("aggregate_id", String(200), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
)

# The relay's only query: the backlog of one partition in write order. Partial, so
# it stays as small as the backlog however large the published history grows.
Index(
    "ix_outbox_unpublished",
    outbox.c.partition,
    outbox.c.seq,
    postgresql_where=outbox.c.published_at.is_(None),
    sqlite_where=outbox.c.published_at.is_(None),
)
# Retention pruning of published rows.
Index("ix_outbox_published_at", outbox.c.published_at)

processed_events = Table(
    "processed_events",
    kit_metadata,
    Column("consumer", String(200), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
)


def partition_of(aggregate_id: str, partitions: int = PARTITIONS) -> int:
    """Stable across processes and Python versions (unlike `hash()`)."""
    return zlib.crc32(aggregate_id.encode()) % partitions


def create_kit_tables(bind: Connection) -> None:
    kit_metadata.create_all(bind)


def drop_kit_tables(bind: Connection) -> None:
    kit_metadata.drop_all(bind)
