"""Gradings and their findings.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gradings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("student", sa.String(300), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("rubric_sha256", sa.String(64), nullable=False),
        sa.Column("grader_version", sa.String(40), nullable=False),
        sa.Column("graded_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("max_score", sa.Float, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_index("ix_gradings_lookup", "gradings",
                    ["student", "path", "code_sha256", "rubric_sha256", "grader_version"])
    op.create_index("ix_gradings_student", "gradings", ["student", "graded_at"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("grading_id", sa.Integer, sa.ForeignKey("gradings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("diagnosis", sa.String(60), nullable=True),
        sa.Column("points", sa.Float, nullable=False),
        sa.Column("max_points", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("cell", sa.Integer, nullable=True),
        sa.Column("line", sa.Integer, nullable=True),
    )
    op.create_index("ix_findings_grading_id", "findings", ["grading_id"])


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("gradings")
