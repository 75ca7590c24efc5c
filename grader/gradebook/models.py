"""The gradebook's tables, as SQLAlchemy models (the schema itself is made by the Alembic
migrations beside this file)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Grading(Base):
    """One grading of one submission: what was graded (code, rubric, grader) and the result."""
    __tablename__ = "gradings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rubric_sha256: Mapped[str] = mapped_column(String(64))
    grader_version: Mapped[str] = mapped_column(String(40))
    graded_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    result: Mapped[str] = mapped_column(Text)  # the SubmissionResult as JSON: reused on a skip
    findings: Mapped[list["FindingRow"]] = relationship(back_populates="grading", cascade="all, delete-orphan")

    __table_args__ = (
        Index("ix_gradings_lookup", "student", "code_sha256", "rubric_sha256", "grader_version"),
        Index("ix_gradings_student", "student", "graded_at"),
        Index("ix_gradings_file", "student", "file_sha256", "rubric_sha256", "grader_version"),
    )


class FindingRow(Base):
    """One step's finding, queryable (which mistakes, who, since when)."""
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grading_id: Mapped[int] = mapped_column(ForeignKey("gradings.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(10))
    diagnosis: Mapped[str | None] = mapped_column(String(60), nullable=True)
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    grading: Mapped[Grading] = relationship(back_populates="findings")
