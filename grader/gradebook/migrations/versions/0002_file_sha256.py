"""Remember each graded file's bytes too, so an unchanged file is reused without being parsed.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gradings") as batch:
        batch.add_column(sa.Column("file_sha256", sa.String(64), nullable=True))
        batch.create_index("ix_gradings_file", ["student", "path", "file_sha256", "rubric_sha256", "grader_version"])


def downgrade() -> None:
    with op.batch_alter_table("gradings") as batch:
        batch.drop_index("ix_gradings_file")
        batch.drop_column("file_sha256")
