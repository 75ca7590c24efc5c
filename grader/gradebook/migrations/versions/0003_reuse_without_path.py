"""Reuse is keyed on the student and what was graded, not on the path as typed: the lookup
indexes lose their path column.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gradings") as batch:
        batch.drop_index("ix_gradings_lookup")
        batch.drop_index("ix_gradings_file")
        batch.create_index("ix_gradings_lookup", ["student", "code_sha256", "rubric_sha256", "grader_version"])
        batch.create_index("ix_gradings_file", ["student", "file_sha256", "rubric_sha256", "grader_version"])


def downgrade() -> None:
    with op.batch_alter_table("gradings") as batch:
        batch.drop_index("ix_gradings_lookup")
        batch.drop_index("ix_gradings_file")
        batch.create_index("ix_gradings_lookup", ["student", "path", "code_sha256", "rubric_sha256", "grader_version"])
        batch.create_index("ix_gradings_file", ["student", "path", "file_sha256", "rubric_sha256", "grader_version"])
