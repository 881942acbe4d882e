"""Full-text search over posts (title, body) and lessons (topic, body), and the
lesson catalogue (lessons remember when they were published).

The search index depends on the engine:
- PostgreSQL: a stored generated `search_tsv` column on each table (title or topic
  weighted A, body B; the `simple` configuration: no stemming, no stop words, the
  same words SQLite's tokenizer finds) with a GIN index.
- SQLite: an FTS5 table per searched table (`posts_fts`, `lessons_fts`: the row's
  id, unindexed, and its two text columns), filled from the existing rows and kept
  in sync by triggers on insert, update of the text and delete. The FTS row is
  found by `doc_id` (the searched tables have no stable integer key to share with
  FTS5's rowid), which scans the FTS table: fine for the embedded stack's sizes;
  PostgreSQL is the engine for large ones.

Revision ID: content_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "content_0007"
down_revision = "content_0006"
branch_labels = None
depends_on = None

# (table, its title-like column): the body column is `body` in both.
SEARCHED = (("posts", "title"), ("lessons", "topic"))


def upgrade() -> None:
    op.add_column("lessons", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE lessons SET published_at = updated_at WHERE status = 'published'")
    op.create_index("ix_lessons_catalog", "lessons", ["status", "published_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        for table, title in SEARCHED:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS "
                f"(setweight(to_tsvector('simple', {title}), 'A') || "
                f"setweight(to_tsvector('simple', body), 'B')) STORED"
            )
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_tsv)")
        return
    for table, title in SEARCHED:
        fts = f"{table}_fts"
        op.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5("
            f"doc_id UNINDEXED, {title}, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
        op.execute(
            f"INSERT INTO {fts} (doc_id, {title}, body) SELECT id, {title}, body FROM {table}"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts} (doc_id, {title}, body) VALUES (new.id, new.{title}, new.body); "
            "END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {title}, body ON {table} "
            f"WHEN old.{title} IS NOT new.{title} OR old.body IS NOT new.body BEGIN "
            f"DELETE FROM {fts} WHERE doc_id = old.id; "
            f"INSERT INTO {fts} (doc_id, {title}, body) VALUES (new.id, new.{title}, new.body); "
            "END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
            f"DELETE FROM {fts} WHERE doc_id = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _ in SEARCHED:
            op.execute(f"DROP INDEX ix_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN search_tsv")
    else:
        for table, _ in SEARCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_fts_{event}")
            op.execute(f"DROP TABLE {table}_fts")
    op.drop_index("ix_lessons_catalog", table_name="lessons")
    op.drop_column("lessons", "published_at")
