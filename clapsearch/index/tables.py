"""The tables of an index database, declared with SQLAlchemy 2 (schema.py describes them).

Only the writer imports this module (`indexer.writer` creates the tables from it): reading an
index never imports SQLAlchemy, whose 130 modules cost a cold `clapsearch query` about a
quarter of a second (`clapsearch.index.db`).
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "index_meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    db_uuid: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(Text)
    model_source: Mapped[str] = mapped_column(Text, default="")  # version 1; kept for old readers
    model_identity: Mapped[str] = mapped_column(Text, default="")  # ModelIdentity JSON
    dim: Mapped[int] = mapped_column(Integer)
    config_json: Mapped[str] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    index_type: Mapped[str] = mapped_column(String(32), default="flat")
    recall_at_10: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    ann_build: Mapped[str | None] = mapped_column(String(32), nullable=True)  # version 3


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duration_s: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    indexed_at: Mapped[float] = mapped_column(Float)


class SegmentRow(Base):
    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_file", "file_id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class FailureRow(Base):
    __tablename__ = "failures"
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    mtime_ns: Mapped[int] = mapped_column(Integer, default=0)
    failed_at: Mapped[float] = mapped_column(Float)


def create_statements() -> list[str]:
    """`CREATE TABLE/INDEX IF NOT EXISTS` for every table, in dependency order, as SQLite SQL
    (run inside the writer's transaction by `IndexWriter.create`)."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    out = []
    for table in Base.metadata.sorted_tables:
        out.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: i.name):
            out.append(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
    return out


__all__ = ["Base", "FailureRow", "FileRow", "MetaRow", "SegmentRow", "create_statements"]
