"""The gradebook: every grading recorded; unchanged submissions reused; history kept."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import SUBMISSIONS, load_examples_module, write_notebook
from dropout_grader.errors import GradebookError
from dropout_grader.gradebook import Gradebook
from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission

GRADE = str(Path(sys.executable).with_name("grade"))
ex = load_examples_module()


@pytest.fixture
def book(tmp_path):
    gradebook = Gradebook(f"sqlite:///{tmp_path / 'book.sqlite'}")
    yield gradebook
    gradebook.close()


def test_schema_is_made_by_the_migrations(book, tmp_path):
    with sqlite3.connect(tmp_path / "book.sqlite") as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert {"gradings", "findings", "alembic_version"} <= tables
    assert version == "0003"
    Gradebook(f"sqlite:///{tmp_path / 'book.sqlite'}").close()  # opening again: already at head


def test_an_older_gradebook_is_migrated(tmp_path):
    """A gradebook made by the first schema gets the second one's column on opening."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, inspect

    from dropout_grader.gradebook import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert "file_sha256" not in {c["name"] for c in inspect(engine).get_columns("gradings")}
    Gradebook(url).close()
    assert "file_sha256" in {c["name"] for c in inspect(engine).get_columns("gradings")}
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("gradings")}
    assert indexes["ix_gradings_lookup"] == ["student", "code_sha256", "rubric_sha256", "grader_version"]
    assert "path" not in indexes["ix_gradings_file"]  # reuse is not keyed on the path (0003)


def test_unchanged_code_is_reused_and_changed_code_regraded(book, rubric, tmp_path):
    path = write_notebook(tmp_path / "ada.ipynb", ex.IMPORTS, ex.forward(), ex.backward())
    submission = Submission("ada", str(path))
    with Grader(rubric, gradebook=book) as grader:
        first = grader.grade(submission)
        again = grader.grade(submission)
        assert not first.reused and again.reused
        assert again.findings == first.findings and again.code_sha256 == first.code_sha256
        # new outputs, same code: still unchanged
        notebook = nbformat.read(path, as_version=4)
        notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
        notebook.cells[1].execution_count = 7
        nbformat.write(notebook, path)
        assert grader.grade(submission).reused
        # the graded code changes: graded again, with the new verdict
        write_notebook(path, ex.IMPORTS, ex.forward(l1=dict(scale="-")), ex.backward())
        changed = grader.grade(submission)
        assert not changed.reused
        assert any(f.step == "forward.layer1.scale" and f.verdict == "wrong" for f in changed.findings)
    with Grader(rubric, gradebook=book, regrade=True) as grader:
        assert not grader.grade(submission).reused
    history = book.history("ada")
    assert [h.score for h in history] == [19, 17, 17]
    assert history[1].wrong == ["forward.layer1.scale: missing"]


def test_a_changed_rubric_regrades(book, tmp_path):
    from dropout_grader.rubric import load_rubric

    path = SUBMISSIONS / "correct_reference.ipynb"
    rubric = load_rubric()  # our own copy: the session's is shared
    with Grader(rubric, gradebook=book) as grader:
        grader.grade(Submission("x", str(path)))
    rubric.sha256 = "0" * 64  # as if the rubric file had changed
    with Grader(rubric, gradebook=book) as grader:
        assert not grader.grade(Submission("x", str(path))).reused


def test_history_command(tmp_path):
    out = tmp_path / "out"
    assert subprocess.run([GRADE, str(SUBMISSIONS / "correct_reference.ipynb"), "--out", str(out), "-q"],
                          capture_output=True, timeout=120).returncode == 0
    shown = subprocess.run([GRADE, "history", "correct_reference", "--out", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "28/28" in shown.stdout and "all steps right" in shown.stdout
    missing = subprocess.run([GRADE, "history", "nobody", "--out", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no gradebook" in missing.stderr


def test_unreachable_database_is_a_clear_usage_error(tmp_path):
    with pytest.raises(GradebookError):
        Gradebook("postgresql://user:secret@127.0.0.1:1/nowhere")
    completed = subprocess.run([GRADE, str(SUBMISSIONS / "correct_reference.ipynb"), "--out", str(tmp_path),
                                "--gradebook", "postgresql://user:secret@127.0.0.1:1/nowhere"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "gradebook" in completed.stderr and "secret" not in completed.stderr
    assert "Traceback" not in completed.stderr


def test_results_json_says_what_was_reused(tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        subprocess.run([GRADE, str(SUBMISSIONS / "correct_binomial.ipynb"), "--out", str(out), "-q"],
                       capture_output=True, timeout=120)
    document = json.loads((out / "results.json").read_text())
    assert document["submissions"][0]["reused"] is True
    assert len(document["submissions"][0]["code_sha256"]) == 64


# --- the grader's own failures are never charged to a student ----------------------------------

def _stored(book) -> list[tuple[str, str, float]]:
    from sqlalchemy import select

    from dropout_grader.gradebook.models import Grading
    from sqlalchemy.orm import Session

    with Session(book.engine) as session:
        return [(g.student, g.status, g.score) for g in session.execute(select(Grading)).scalars()]


def test_a_bug_in_the_grader_is_a_grading_error_logged_and_never_stored(book, rubric, tmp_path, monkeypatch):
    import dropout_grader.pipeline as pipeline

    def broken(*args, **kwargs):
        raise KeyError("a bug of ours")  # as a decoding bug in assess.py would

    monkeypatch.setattr(pipeline, "decode_run", broken)
    log = tmp_path / "errors.log"
    with Grader(rubric, gradebook=book, error_log=log) as grader:
        result = grader.grade(Submission("ada", str(SUBMISSIONS / "correct_reference.ipynb")))
    assert result.status == "grading_error" and not result.reused
    assert "KeyError" in result.error and "not in the student's code" in result.error
    assert f"traceback in {log}" in result.error
    assert "Traceback (most recent call last)" in log.read_text() and "broken" in log.read_text()
    assert not result.wrong  # nothing charged to the student: no wrong step, no finding of theirs
    assert _stored(book) == []
    monkeypatch.undo()
    with Grader(rubric, gradebook=book) as grader:  # the next run grades it for real
        again = grader.grade(Submission("ada", str(SUBMISSIONS / "correct_reference.ipynb")))
    assert again.status == "graded" and again.score == 19 and not again.reused


def test_a_dead_sandbox_interpreter_is_a_grading_error_not_the_students(book, rubric):
    with Grader(rubric, gradebook=book, isolation="process") as grader:
        assert grader.protections  # the sandbox started (it is checked on a thread of its own) ...
        grader.sandbox._process.kill()  # ... then the zygote dies under the grader
        grader.sandbox._process.wait()
        result = grader.grade(Submission("ada", str(SUBMISSIONS / "correct_reference.ipynb")))
    assert result.status == "grading_error" and "sandbox" in result.error
    assert _stored(book) == []


def test_the_gradebook_refuses_to_store_a_grading_error(book):
    from dropout_grader.results import SubmissionResult

    failed = SubmissionResult("ada", "a.ipynb", "grading_error", 0.0, 19.0, error="boom")
    with pytest.raises(ValueError):
        book.record(failed, "c" * 64, "r" * 64, "v")


def test_reuse_does_not_depend_on_the_path_as_typed(tmp_path):
    folder = tmp_path / "class"
    (folder / "ada").mkdir(parents=True)
    (folder / "ada" / "hw.ipynb").write_bytes((SUBMISSIONS / "correct_reference.ipynb").read_bytes())
    (folder / "bob.ipynb").write_bytes((SUBMISSIONS / "forward_layer1_scale_missing.ipynb").read_bytes())
    out = tmp_path / "out"
    first = subprocess.run([GRADE, "class", "--out", str(out), "-q"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([GRADE, ".", "--out", str(out), "-q"], cwd=folder,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "2 of 2 unchanged since the gradebook's last grading: reused" in again.stdout
    moved = tmp_path / "moved"
    folder.rename(moved)
    third = subprocess.run([GRADE, str(moved), "--out", str(out), "-q"], capture_output=True, text=True, timeout=120)
    assert "2 of 2 unchanged" in third.stdout


def test_a_changed_helper_module_beside_the_notebook_is_graded_again(book, rubric, tmp_path):
    folder = tmp_path / "ada"
    folder.mkdir()
    path = folder / "hw.ipynb"
    path.write_bytes((SUBMISSIONS / "correct_reference.ipynb").read_bytes())
    (folder / "helpers.py").write_text("SCALE = 1\n")
    submission = Submission("ada", str(path))
    with Grader(rubric, gradebook=book) as grader:
        assert not grader.grade(submission).reused
        assert grader.grade(submission).reused
        (folder / "helpers.py").write_text("SCALE = 2\n")  # the notebook is unchanged, the submission not
        assert not grader.grade(submission).reused
