"""Nothing lost: each finished submission's result is appended to a journal and flushed to
disk as soon as it is known. After Ctrl-C, `kill -9` or a crash, running the same command
again takes the results already there and grades only what is missing."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from grader.results import Submission, SubmissionResult

JOURNAL_NAME = ".grade-journal.jsonl"


def submission_key(submission: Submission, rubric_sha256: str, version: str) -> str:
    """Changes when the notebook's bytes, its path, the rubric or the grader change."""
    digest = hashlib.sha256()
    for part in (submission.student, submission.path, rubric_sha256, version):
        digest.update(part.encode() + b"\0")
    try:
        with open(submission.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        digest.update(b"<unreadable>")
    return digest.hexdigest()


class Journal:
    def __init__(self, folder: Path):
        self.path = folder / JOURNAL_NAME
        self._lock = threading.Lock()

    def load(self) -> dict[str, SubmissionResult]:
        """Results of an interrupted run, by key. A line cut short by a kill is ignored."""
        done: dict[str, SubmissionResult] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return done
        for line in lines:
            try:
                entry = json.loads(line)
                done[entry["key"]] = SubmissionResult.from_dict(entry["result"])
            except (ValueError, KeyError, TypeError):
                continue
        return done

    def record(self, key: str, result: SubmissionResult) -> None:
        line = json.dumps({"key": key, "result": result.to_dict()}, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
